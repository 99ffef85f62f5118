#!/usr/bin/env bash
# Builds the native crypto module with AddressSanitizer (and UBSan) in a scratch copy and runs the
# cross-backend property test against that build. Node itself is not instrumented, so the ASan
# runtime is preloaded; leak checking is off because Node keeps its heap at exit by design.
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp src/crypto/native/*.c src/crypto/native/*.h src/crypto/native/binding.gyp "$work/"
prefix="$(cd "$(dirname "$(command -v node)")/.." && pwd)"
CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1" \
LDFLAGS="-fsanitize=address,undefined" \
  node "${npm_config_node_gyp:-$prefix/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js}" \
  rebuild --loglevel=warn --directory "$work" --nodedir="$prefix"

asan="$(gcc -print-file-name=libasan.so)"
ubsan="$(gcc -print-file-name=libubsan.so)"
# PRISMA_COLUMN_ENCRYPTION_PREBUILD points node-gyp-build at the sanitized build; no global setup:
# the tests need no database, and the database servers should not run under a preloaded ASan.
# Jest reads each path as a pattern: test/property/nativeAttack matches nativeAttack.test.ts and
# nativeAttackBatch.test.ts (the module called directly as a hostile caller and database would).
LD_PRELOAD="$asan $ubsan" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 PCE_EXPECT_NATIVE_BUILD="$work" \
PRISMA_COLUMN_ENCRYPTION_PREBUILD="$work" \
  node --experimental-vm-modules --disable-warning=ExperimentalWarning node_modules/jest/bin/jest.js \
  --globalSetup='' --globalTeardown='' test/property/crossBackend.test.ts test/property/nativeAttack
