# klstore: one image for writer shards, readers and the CLI. Node 24 runs the TypeScript
# sources directly (type stripping), so there is no build stage beyond installing.
#   docker build -t klstore .
#   docker run klstore serve writer --config /etc/klstore/klstore.ini
FROM node:24-slim
ENV NODE_ENV=production COREPACK_ENABLE_DOWNLOAD_PROMPT=0
WORKDIR /opt/klstore
RUN corepack enable
# Manifests first, so the dependency layer is reused while only sources change.
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml ./
COPY packages/core/package.json packages/core/
COPY packages/proto/package.json packages/proto/
COPY packages/sharding/package.json packages/sharding/
COPY packages/config/package.json packages/config/
COPY packages/service-runtime/package.json packages/service-runtime/
COPY packages/client/package.json packages/client/
COPY packages/cli/package.json packages/cli/
COPY services/writer/package.json services/writer/
COPY services/reader/package.json services/reader/
COPY services/kafka-bridge/package.json services/kafka-bridge/
COPY e2e/package.json e2e/
COPY bench/package.json bench/
RUN pnpm install --frozen-lockfile --prod --filter @klstore/cli...
COPY packages packages
COPY services services
USER node
EXPOSE 7401 7501 9401 9501
ENTRYPOINT ["node", "packages/cli/src/main.ts"]
CMD ["serve", "writer", "--config", "/etc/klstore/klstore.ini"]
