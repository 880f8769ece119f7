.PHONY: run test check bench
run:    ## the main job: local swarm + registry + autodock serve
	scripts/run.sh
test:   ## everything the CI runs
	scripts/test.sh
check:  ## lint and format check only
	ruff check src tests && ruff format --check src tests
bench:  ## benchmarks, writes bench/results/latest.{md,json,png}
	bench/run.sh
