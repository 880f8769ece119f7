#!/bin/sh
# The "small command" both intake peers run for each push: append one line.
echo "$1" >> "$BENCH_RECORD_FILE"
