#!/bin/sh
# Stand-in for Prisma's schema-engine binary on machines without internet.
# `prisma generate` only needs the variable to point at an executable; commands that
# really need the engine (migrate, db push) fail here with this message instead of a download error.
echo "schema engine not available offline: prisma migrate/db push need the real engine (unset PRISMA_SCHEMA_ENGINE_BINARY on a machine with internet)" >&2
exit 1
