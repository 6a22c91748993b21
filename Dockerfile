# The Backchannel relay. Build: docker build -t backchannel-relay .
# Node 22 LTS (20 is out of security support). Pin it by digest where you build
# (FROM node:22-bookworm-slim@sha256:…): no registry was reachable from where this was written.
FROM node:22-bookworm-slim

ENV NODE_ENV=production \
    BACKCHANNEL_HOST=0.0.0.0 \
    BACKCHANNEL_PORT=8787 \
    BACKCHANNEL_DATA_DIR=/var/lib/backchannel \
    BACKCHANNEL_DRAIN_DELAY_MS=5000

WORKDIR /app
COPY package.json package-lock.json ./
COPY client-sdk/package.json client-sdk/package.json
COPY server/package.json server/package.json
# Runtime dependencies only: the relay runs its TypeScript through tsx (a dependency of the server).
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY tsconfig.base.json tsconfig.json ./
COPY client-sdk client-sdk
COPY server server
COPY migrations migrations

RUN useradd --system --uid 10001 --home-dir /var/lib/backchannel --create-home backchannel \
 && chown -R backchannel /var/lib/backchannel
USER backchannel
# The embedded database's folder (used only without DATABASE_URL): a volume, so its data never
# stays in the container's layer.
VOLUME ["/var/lib/backchannel"]

EXPOSE 8787
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:' + (process.env.BACKCHANNEL_PORT || 8787) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"

# SIGTERM reaches node directly (exec form): graceful shutdown, exit 0.
CMD ["node", "--conditions=source", "--import", "tsx", "server/src/cli.ts", "start"]
