# syntax=docker/dockerfile:1

# Node 24 (LTS) in both stages: the re2 addon is compiled for the Node that runs it. The code also runs on
# Node 20.19+ and 22 (package.json engines).
# Build: compiles TypeScript and the re2 native addon (node-gyp needs python3, make, g++).
FROM node:24-bookworm-slim AS build
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY . .
# `npm ci` runs `prepare`: prisma generate + tsc into dist/.
RUN npm ci && npm prune --omit=dev

FROM node:24-bookworm-slim
ENV NODE_ENV=production PORT=8080
WORKDIR /app
COPY --from=build --chown=root:root /app/package.json /app/package-lock.json ./
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
# The m2m-gateway command (package.json bin): `docker run IMAGE npx m2m-gateway check /dir`.
COPY --from=build --chown=root:root /app/bin ./bin
COPY --from=build --chown=root:root /app/prisma ./prisma
COPY --from=build --chown=root:root /app/docs/openapi.yaml ./docs/openapi.yaml
# Without DATABASE_URL the embedded database lives in ./.data (as with npm start): the gateway's user may
# write there, and a volume mounted there keeps it.
RUN mkdir /app/.data && chown node:node /app/.data
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT}/healthz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The same command as `npm start` (which execs it), without npm between the signals and the process.
CMD ["node", "dist/src/main.js"]
