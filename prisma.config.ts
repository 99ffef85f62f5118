// Prisma CLI configuration for this repository's PostgreSQL schema. With a reachable database
// and Prisma's schema engine (any machine with internet), the normal flow works:
//   DATABASE_URL=postgresql://... npx prisma migrate deploy
// For MySQL/MariaDB pass --schema prisma/mysql/schema.prisma.
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'prisma/postgres/schema.prisma',
  migrations: { path: 'prisma/postgres/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? '' },
});
