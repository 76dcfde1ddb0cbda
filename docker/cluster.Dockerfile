# octelium-cluster image. Build context: a folder with install.mjs (docker/install.mjs), packs/*.tgz (from `pnpm pack`)
# and, optionally, app/ (those tarballs already npm-installed for this platform); scripts/container-images.mjs
# prepares it and builds.
#   docker build -f docker/cluster.Dockerfile -t octelium-cluster CONTEXT
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
# The data dir (SQLite file, bootstrap token) belongs to the unprivileged user; a fresh named volume inherits that.
COPY --from=build --chown=10001:10001 /data /data
ENV NODE_ENV=production
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8090
# No curl in a minimal base: node asks the cluster's own liveness route.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8090/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/app/node_modules/@octelium-ts/cluster/bin/octelium-cluster.js"]
# --domain: the name clients use to reach the cluster (port appended unless 80/443); set it for your deployment.
CMD ["start", "--host", "0.0.0.0", "--port", "8090", "--data-dir", "/data"]
