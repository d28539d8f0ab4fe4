# The durable-trader image: the `trader` CLI and its workers. Used by docker-compose.yml.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production TRADER_HOME=/data
COPY package.json package-lock.json .npmrc ./
COPY scripts ./scripts
# The Temporal binaries are only for the embedded stack; compose runs a real cluster.
# npm install, not npm ci: see .ci/run.
RUN npm install --omit=dev --ignore-scripts && npm rebuild @swc/core esbuild bufferutil protobufjs
COPY . .
VOLUME ["/data"]
ENTRYPOINT ["node", "bin/trader.js"]
CMD ["worker", "--queue", "trading"]
