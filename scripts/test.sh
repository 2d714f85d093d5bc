#!/usr/bin/env bash
# The one test command: installs what the tests need, builds, runs every test.
# Ends with the line "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
# npm ci runs the package's prepare script, which is the build (tsc and the dashboard): building
# again would cost a second full tsc. Only when npm is told to skip scripts does it build here.
npm ci --no-audit --no-fund --loglevel=error
if [ "$(npm config get ignore-scripts)" = "true" ]; then npm run build --silent; fi
npx mocha --reporter dist/test/reporter.js "$@"
