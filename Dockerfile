# The durable-trader image: the `trader` CLI and its workers. Used by docker-compose.yml.

# The build (dist/, `npm run build`) needs the TypeScript compiler, a dev dependency: compiled in a
# stage of its own, so the image keeps the production install.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY scripts ./scripts
RUN npm install --ignore-scripts
COPY . .
RUN npm run build

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production TRADER_HOME=/data
COPY package.json package-lock.json .npmrc ./
COPY scripts ./scripts
# The Temporal binaries are only for the embedded stack; compose runs a real cluster.
# npm install, not npm ci: see .ci/run.
RUN npm install --omit=dev --ignore-scripts && npm rebuild @swc/core esbuild bufferutil protobufjs
COPY . .
COPY --from=build /app/dist ./dist
# The image runs the build; it never falls back to the sources (whose copied files' dates say
# nothing about the build's): bin/build-state.js.
ENV TRADER_FROM=dist
VOLUME ["/data"]
ENTRYPOINT ["node", "bin/trader.js"]
CMD ["worker", "--queue", "trading"]
