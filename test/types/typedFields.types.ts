/**
 * Type-level tests, compiled by `npm run typecheck` (never run): the extended client keeps
 * Prisma's own TypeScript types for typed encrypted fields, in inputs and in outputs. An
 * assertion that stops holding fails to compile; each `@ts-expect-error` fails to compile when
 * the wrong input it marks starts being accepted.
 */
import { Prisma, PrismaClient } from '../../generated/postgres/client/client';
import { encryptedFields } from '../../generated/postgres/encryption';
import { columnEncryption, localKeys } from '../../src';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const assertType = <T extends true>(): T | undefined => undefined;

declare const base: PrismaClient;
const prisma = base.$extends(columnEncryption({ fields: encryptedFields, keys: localKeys({ data: [], index: [] }) }));

export async function outputs(): Promise<void> {
  const chart = await prisma.natalChart.findUniqueOrThrow({ where: { id: 1 } });
  assertType<Equal<typeof chart.bornAt, Date | null>>();
  assertType<Equal<typeof chart.accuracy, number | null>>();
  assertType<Equal<typeof chart.ephemeris, bigint | null>>();
  assertType<Equal<typeof chart.latitude, number | null>>();
  assertType<Equal<typeof chart.fee, Prisma.Decimal | null>>();
  assertType<Equal<typeof chart.consent, boolean | null>>();
  assertType<Equal<typeof chart.chart, Prisma.JsonValue | null>>();
  assertType<Equal<typeof chart.portrait, Uint8Array<ArrayBuffer> | null>>();

  const selected = await prisma.natalChart.findFirstOrThrow({ select: { bornAt: true, fee: true } });
  assertType<Equal<typeof selected, { bornAt: Date | null; fee: Prisma.Decimal | null }>>();

  const user = await prisma.user.findFirstOrThrow({ include: { charts: { select: { chart: true } } } });
  assertType<Equal<(typeof user.charts)[number], { chart: Prisma.JsonValue | null }>>();

  const omitted = await prisma.natalChart.findFirstOrThrow({ omit: { chart: true } });
  // @ts-expect-error an omitted field is not in the result type
  void omitted.chart;
}

export function inputs(): void {
  void prisma.natalChart.create({
    data: { bornAt: new Date(), birthDay: '2020-01-01T00:00:00Z', accuracy: 1, ephemeris: 1n, latitude: 0.5, fee: new Prisma.Decimal('1.5'), consent: true, chart: { a: [1] }, portrait: new Uint8Array() },
  });
  void prisma.natalChart.findMany({ where: { fee: '1.50', bornAt: { in: [new Date()] }, ephemeris: { not: 5n }, chart: { equals: Prisma.JsonNull } } });
  // @ts-expect-error a string is not an Int
  void prisma.natalChart.create({ data: { accuracy: '1' } });
  // @ts-expect-error a number is not a Date
  void prisma.natalChart.create({ data: { bornAt: 5 } });
  // @ts-expect-error a string is not a Boolean
  void prisma.natalChart.findMany({ where: { consent: 'yes' } });
  // @ts-expect-error a string is not Bytes
  void prisma.natalChart.update({ where: { id: 1 }, data: { portrait: 'AAEC' } });
  // @ts-expect-error a Json field takes no shorthand filter
  void prisma.natalChart.findMany({ where: { chart: { sun: 'Aries' } } });
}
