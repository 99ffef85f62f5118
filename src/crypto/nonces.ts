import { randomFillSync } from 'node:crypto';

/**
 * Hands out random nonces from a block of CSPRNG output, refilled a block at a time.
 *
 * Why: `randomBytes(12)` per value costs about as much as the AES-GCM encryption itself (one
 * native call and one allocation per nonce); a block of 256 nonces costs one call. Nonces stay
 * uniformly random and are never handed out twice: each one is a view of a block that is never
 * written again, because a refill allocates a fresh block instead of overwriting the old one.
 */
export class NoncePool {
  private block: Buffer = Buffer.alloc(0);
  private offset = 0;

  constructor(
    private readonly nonceBytes: number,
    private readonly perBlock = 256,
  ) {
    if (!Number.isInteger(nonceBytes) || nonceBytes <= 0) throw new RangeError('nonceBytes must be a positive integer');
    if (!Number.isInteger(perBlock) || perBlock <= 0) throw new RangeError('perBlock must be a positive integer');
  }

  /** A fresh nonce. The returned view stays valid and unchanged after later calls. */
  next(): Buffer {
    if (this.offset + this.nonceBytes > this.block.length) {
      this.block = randomFillSync(Buffer.allocUnsafeSlow(this.nonceBytes * this.perBlock));
      this.offset = 0;
    }
    const nonce = this.block.subarray(this.offset, this.offset + this.nonceBytes);
    this.offset += this.nonceBytes;
    return nonce;
  }
}
