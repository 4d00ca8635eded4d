# The master, built from source. Multi-stage: the build stage compiles TypeScript with the dev
# dependencies; the runtime stage holds only production dependencies and the compiled code.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --no-audit --no-fund
COPY src src
COPY schemas schemas
COPY test test
COPY tools tools
RUN npm run build

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist/src dist/src
COPY schemas schemas
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME /data
# 3000: the key space; 3100: /metrics, /healthz, /readyz.
EXPOSE 3000 3100
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:3100/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["server", "--port", "3000", "--admin-port", "3100", "--db", "/data", "--volumes", "volume1:80,volume2:80,volume3:80"]
