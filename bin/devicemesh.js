#!/usr/bin/env node
'use strict';
// Capture streams and sensors keep libuv's file-system threads busy (4 by default): give the
// agent enough that one more stream never stalls the rest. Read by libuv at its first use.
process.env.UV_THREADPOOL_SIZE = process.env.UV_THREADPOOL_SIZE || '16';
require('../dist/cli/main.js').main(process.argv.slice(2));
