# First draft (the deployment issue completes it): build, then a slim runtime.
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
RUN npm ci && npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY --from=build /app/bin bin
COPY --from=build /app/proto proto
COPY package.json ./
ENTRYPOINT ["node", "bin/devicemesh.js"]
