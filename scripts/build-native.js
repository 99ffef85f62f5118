#!/usr/bin/env node
/**
 * Compiles the native AES-GCM/HMAC module (src/crypto/native) with npm's own node-gyp against the
 * headers of the running Node, and copies it to prebuilds/<platform>-<arch>/ where node-gyp-build
 * finds it at run time. The npm package ships that prebuild, so users need no compiler and the
 * package needs no install script. Skipped when the prebuild is newer than its sources.
 *
 * A failed build is fatal on linux-x64 (the platform the package ships a prebuild for); elsewhere
 * it is a warning and the library uses node:crypto. PCE_NATIVE_BUILD=skip skips the build.
 * Extra node-gyp arguments (e.g. the sanitizer script's flags) come from PCE_NATIVE_GYP_ARGS.
 */
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const source = path.join(root, 'src/crypto/native');
const libc = process.platform === 'linux' ? (fs.existsSync('/etc/alpine-release') ? '.musl' : '.glibc') : '';
const target = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, `node.napi${libc}.node`);
const required = process.platform === 'linux' && process.arch === 'x64' && libc === '.glibc';

function mtime(file) {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

function nodeGyp() {
  if (process.env.npm_config_node_gyp) return process.env.npm_config_node_gyp;
  return path.join(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js');
}

/** The running Node's own headers (they include OpenSSL's): no download. */
function nodedirArgs() {
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return fs.existsSync(path.join(prefix, 'include/node/node_api.h')) ? [`--nodedir=${prefix}`] : [];
}

function main() {
  if (process.env.PCE_NATIVE_BUILD === 'skip') return;
  const extra = (process.env.PCE_NATIVE_GYP_ARGS ?? '').split(' ').filter(Boolean);
  const inputs = fs.readdirSync(source).filter((f) => /\.(c|h|gyp)$/.test(f)).map((f) => mtime(path.join(source, f)));
  if (extra.length === 0 && mtime(target) > Math.max(...inputs)) return;
  try {
    execFileSync(process.execPath, [nodeGyp(), 'rebuild', '--loglevel=warn', '--directory', source, ...nodedirArgs(), ...extra], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    fs.mkdirSync(path.dirname(target), { recursive: true });
    // Copy then rename: a process that has the old file loaded keeps its (unlinked) copy intact.
    const temp = `${target}.${process.pid}.tmp`;
    fs.copyFileSync(path.join(source, 'build/Release/pce_crypto.node'), temp);
    fs.renameSync(temp, target);
  } catch (error) {
    const message = `native crypto module not built (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`;
    if (required) {
      console.error(`build-native: ${message}`);
      process.exit(1);
    }
    console.warn(`build-native: ${message}; node:crypto will be used on ${process.platform}-${process.arch}`);
  }
}

main();
