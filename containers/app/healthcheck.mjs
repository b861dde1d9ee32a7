// The API's health check (the image's HEALTHCHECK, and compose's): GET /health on this
// container's own port. Exit 0 healthy, 1 not.
const port = process.env.EVF_API_PORT || '8000'
try {
  const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(4000) })
  process.exit(res.ok ? 0 : 1)
} catch {
  process.exit(1)
}
