# gradq: one image for both roles, `gradq train …` (coordinator) and `gradq worker …`.
#
#   docker build -t gradq .
#   docker run --rm gradq --help
#
# Stages: manifests (only the package.json files, so that `npm ci` stays cached until a dependency changes),
# build (all dependencies, `tsc -b`), prod-deps (production dependencies only) and the runtime image, which
# holds production node_modules, the workspace manifests, bin/, dist/, the compiled wasm/*.wasm kernels (which
# dist/ loads by relative path) and the dashboard's page (apps/coordinator/dashboard) of every project; no sources, no
# TypeScript, no Nx. Builds with BuildKit and with the classic builder of older engines alike (no cache mounts).

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS base
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false

# Every workspace's package.json (and bin/, which npm links into node_modules/.bin), whatever projects exist
# under libs/ and apps/: a new project needs no change here. Its output changes only when a manifest does.
FROM base AS manifests
COPY libs ./libs
COPY apps ./apps
RUN find libs apps -type f \
        ! -regex '[^/]*/[^/]*/package\.json' \
        ! -regex '[^/]*/[^/]*/bin/.*' \
        -delete \
 && find libs apps -type d -empty -delete

# All dependencies, for the build. --ignore-scripts: the root `prepare` script (tsc -b) cannot run before the
# sources are here, and the workspace already opts out of dependency install scripts (allowScripts).
FROM base AS deps
COPY package.json package-lock.json ./
COPY --from=manifests /app/ ./
RUN npm ci --ignore-scripts

# The sources in one COPY (what .dockerignore lets into the context): each layer costs a full copy of the file
# system on a vfs engine (tools/compose-engine), so the stages that are rebuilt on every change have few.
FROM deps AS build
COPY . .
RUN npm run build \
 && mkdir /out \
 && find libs apps -mindepth 2 -maxdepth 2 -type d -name dist -exec cp -a --parents {} /out/ \; \
 && find libs apps -mindepth 3 -maxdepth 3 -path '*/wasm/*.wasm' -exec cp -a --parents {} /out/ \; \
 && find libs apps -mindepth 2 -maxdepth 2 -type d -name dashboard -exec cp -a --parents {} /out/ \;

# Production dependencies only (bullmq, ioredis, msgpackr and the workspace links): the runtime image starts from
# this stage, so that its node_modules are not copied (and checksummed) once more. /data: dataset cache
# ($GRADQ_DATA_DIR, downloads land in /data/<dataset>/); /runs: checkpoints and models. Owned by the unprivileged
# `node` user (uid 1000) of the base image, so that a fresh named volume mounted there inherits that ownership
# and the non-root process can write to it.
FROM base AS prod-deps
COPY package.json package-lock.json ./
COPY --from=manifests /app/ ./
RUN npm ci --omit=dev --ignore-scripts \
 && npm cache clean --force && rm -rf /root/.npm \
 && mkdir -p /data /runs && chown node:node /data /runs

FROM prod-deps AS runtime
LABEL org.opencontainers.image.title="gradq" \
      org.opencontainers.image.description="data-parallel training of a from-scratch MLP over BullMQ and Redis"
# --max-semi-space-size=1 (for both roles): a 1 MB young generation; the processes' tensors live outside the JS
# heap. Measured with local workers (which get the same flag) on the benchmark model: peak RSS 142-150 MB per
# worker instead of 170-185 MB. docker-compose.yml adds --max-old-space-size=64 for the workers only.
ENV NODE_ENV=production \
    NODE_OPTIONS="--enable-source-maps --max-semi-space-size=1" \
    GRADQ_DATA_DIR=/data
USER node
ENTRYPOINT ["node", "apps/coordinator/bin/gradq.js"]
CMD ["--help"]
# Last: the only layer of this stage that a change of the sources rebuilds (on a vfs engine every instruction
# after a rebuilt layer costs a full copy of the file system, metadata ones too).
COPY --from=build /out/ ./
