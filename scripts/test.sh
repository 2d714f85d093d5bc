#!/usr/bin/env bash
# The one test command: installs what the tests need, builds, runs every test.
# Ends with the line "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
npx mocha --reporter dist/test/reporter.js "$@"
