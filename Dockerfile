# Freight from this checkout: npm ci (with dev dependencies: the build needs TypeScript), npm run build, npm start.
#   docker build -t freight .    (docker-compose.yml builds it for you)
FROM node:20-slim

# The server runs as the unprivileged "node" user; /data is its DATA_DIR (temp part files, the dev secret).
RUN mkdir -p /app /data && chown node:node /app /data
WORKDIR /app
USER node

COPY --chown=node:node package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

COPY --chown=node:node . .
RUN npm run build

ENV HOST=0.0.0.0 PORT=1080 DATA_DIR=/data
EXPOSE 1080
# npm start runs dist/src/server.js with the memory settings chosen by measurement (see docs/integrity-and-parts.md, Resource bounds).
CMD ["npm", "start"]
