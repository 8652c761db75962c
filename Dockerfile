# Freight from this checkout: npm ci (with dev dependencies: the build needs TypeScript), npm run build, npm start.
#   docker build -t freight .    (docker-compose.yml builds it for you)

# The build stage has what `npm ci` needs to compile the native SHA-256 (native/sha256, with node-gyp against
# the Node headers this image ships in /usr/local/include/node); the image that runs has none of it.
FROM node:20-slim AS build
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
RUN mkdir -p /app && chown node:node /app
WORKDIR /app
USER node
ENV npm_config_nodedir=/usr/local

COPY --chown=node:node package.json package-lock.json ./
COPY --chown=node:node native ./native
RUN npm ci --no-audit --no-fund

COPY --chown=node:node . .
RUN npm run build

FROM node:20-slim
# The server runs as the unprivileged "node" user; /data is its DATA_DIR (temp part files, the dev secret).
RUN mkdir -p /app /data && chown node:node /app /data
WORKDIR /app
USER node
COPY --from=build --chown=node:node /app /app

ENV HOST=0.0.0.0 PORT=1080 DATA_DIR=/data
EXPOSE 1080
# npm start runs dist/src/server.js with the memory settings chosen by measurement (see docs/integrity-and-parts.md, Resource bounds).
CMD ["npm", "start"]
