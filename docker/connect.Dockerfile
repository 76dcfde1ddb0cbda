# `octelium connect` agent image. Build context: a folder with install.mjs (docker/install.mjs), packs/*.tgz (from `pnpm pack`)
# and, optionally, app/ (those tarballs already npm-installed for this platform); scripts/container-images.mjs
# prepares it and builds.
#   docker build -f docker/cluster.Dockerfile -t octelium-connect CONTEXT
# BASE runs the cluster and needs only `node` (>= 20) on PATH; BUILDER assembles /app (needs npm when CONTEXT has no
# app/). Both are arguments because no public image can be pulled on some build machines: CI builds on a base made
# locally from the host's node binary and its libraries.
ARG BASE=node:20-bookworm-slim
ARG BUILDER=node:20-bookworm

FROM ${BUILDER} AS build
COPY . /ctx/
RUN ["node", "/ctx/install.mjs"]

FROM ${BASE}
COPY --from=build /app /app
# HOME holds the agent's state ($HOME/.config/octelium: Session, connect state) and belongs to the unprivileged user.
COPY --from=build --chown=10001:10001 /data /data
ENV NODE_ENV=production HOME=/data
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
# Healthy while the tunnel is up: the agent records its connection state for `octelium status`.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "const fs = require('fs'), d = '/data/.config/octelium'; process.exit(fs.readdirSync(d).some((f) => /^connect-.*\\.json$/.test(f) && JSON.parse(fs.readFileSync(d + '/' + f, 'utf8')).state === 'connected') ? 0 : 1)"]
ENTRYPOINT ["node", "/app/node_modules/@octelium-ts/connect/bin/octelium.js"]
# Configure with OCTELIUM_DOMAIN and OCTELIUM_AUTH_TOKEN; pass what to serve or publish, e.g. `--serve laptop-mcp`.
CMD ["connect", "--help"]
