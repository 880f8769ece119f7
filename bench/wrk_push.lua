-- Docker Hub-shaped push bodies, each one a different repository (a distinct deploy
-- target), so every acknowledged request must turn into exactly one executed command.
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  auth = os.getenv("BENCH_AUTH")
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"callback_url":"http://127.0.0.1:9/u/bench/app/hook/%d-%d/",' ..
    '"push_data":{"tag":"stage","pusher":"bench","pushed_at":%d,"images":[]},' ..
    '"repository":{"repo_name":"bench/app-%d-%d","name":"app-%d-%d","namespace":"bench",' ..
    '"owner":"bench","status":"Active"}}',
    tid, counter, 1700000000 + counter, tid, counter, tid, counter)
  local headers = {["Content-Type"] = "application/json"}
  if auth and auth ~= "" then headers["Authorization"] = "Basic " .. auth end
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"status_errors":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, errors.status, errors.connect, errors.read,
    errors.write, errors.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
