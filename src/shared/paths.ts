import { fileURLToPath } from 'node:url'

/**
 * The repository root. This file sits at the same depth in `src/` (run by tsx) and in `dist/`
 * (compiled), so one relative URL serves both.
 */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url))

/** Where the setup script installs the Kafka jars (ignored by git, kept across runs). */
export const kafkaLibsDir = fileURLToPath(new URL('../../.cache/kafka/libs/', import.meta.url))

/** SQL migrations are read from the source tree in both modes. */
export const migrationsDir = fileURLToPath(new URL('../../src/db/migrations/', import.meta.url))
