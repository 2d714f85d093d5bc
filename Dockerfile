# syntax=docker/dockerfile:1
# devicemesh in two stages: build (compilers, dev dependencies, tsc), then a slim runtime with the
# compiled processes and production dependencies only. One image runs every process:
# `docker run devicemesh:0.1.0 control-plane|agent|sidecar|apply|get …`.

FROM node:20-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY proto proto
COPY src src
COPY control-plane control-plane
COPY agent agent
COPY sidecar sidecar
COPY cli cli
COPY bin bin
COPY test test
COPY scripts scripts
COPY dashboard dashboard
COPY bench bench
# npm ci builds the native modules (serialport, node-hid) and, through "prepare", compiles
# everything; prune then drops the dev dependencies from node_modules.
RUN npm ci --no-audit --no-fund && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim AS runtime
# libusb: node-hid's binary loads it; gpiod: the GPIO driver runs the libgpiod tools. No udev: the
# serial listing reads sysfs, which every container has (read-only is enough).
RUN apt-get update \
  && apt-get install -y --no-install-recommends libusb-1.0-0 gpiod \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/proto proto
COPY --from=build /app/bin bin
COPY --from=build /app/dist/src dist/src
COPY --from=build /app/dist/control-plane dist/control-plane
COPY --from=build /app/dist/agent dist/agent
COPY --from=build /app/dist/sidecar dist/sidecar
COPY --from=build /app/dist/cli dist/cli
COPY --from=build /app/dist/dashboard dist/dashboard
# The data directory and the join-token directory belong to node: a named volume mounted there
# starts as a copy of the image's directory, owner included, so the processes can write to it.
RUN install -d -o node -g node /var/lib/devicemesh /var/lib/devicemesh-join
# The node image's unprivileged user; the agent gets device access through its group (dialout).
USER node
EXPOSE 15000 15001 15002 15010 15020 15443
ENTRYPOINT ["node", "bin/devicemesh.js"]
CMD ["--help"]
