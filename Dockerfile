# autodock itself, to run on a swarm manager (see examples/autodock-stack.yml).
# Build where the internet is reachable:  docker build -t registry.example.com/ops/autodock:0.1.0 .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
# nginx-light: `autodock proxy render` validates configs with `nginx -t`.
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx-light \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# The store lives on a volume; credentials come as Docker secrets under /run/secrets.
ENV AUTODOCK_DATA_DIR=/var/lib/autodock PYTHONUNBUFFERED=1
VOLUME /var/lib/autodock
EXPOSE 58732
# Root, because it talks to /var/run/docker.sock, which is root:docker on the host and
# the docker group's gid differs between hosts.
ENTRYPOINT ["autodock"]
CMD ["serve", "--config", "/etc/autodock/autodock.yml"]
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:58732/healthz', timeout=2)"]
