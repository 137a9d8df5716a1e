# Build: docker build -t regcred-operator:0.2.0 .
# Every stage starts from the same base, pinned by digest so a rebuild gets the same
# bytes (the tag only documents which image the digest is). Refresh both together:
#   docker buildx imagetools inspect node:24-bookworm-slim
FROM node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY generated ./generated
RUN npm run build

# Production dependencies only, installed from the lock file without running any
# package's install scripts (none of them needs one).
FROM node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# Numeric, so the kubelet can verify runAsNonRoot (a user name cannot be checked).
# 65532 owns nothing in the image; /app stays root-owned and read-only to it.
USER 65532:65532
EXPOSE 8081
# For `docker run` and other engines; Kubernetes ignores HEALTHCHECK and uses the
# Deployment's probes on the same endpoint. The slim image has no curl: node asks.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8081/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The same node flags as `npm start` (scripts/node-flags.test.ts checks they agree):
# a small young generation and an old generation that grows 10 % past what a
# full GC leaves keep RSS growth under churn (thousands of Apps re-running) low
# without V8's --optimize-for-size, which costs a third more CPU per write; the
# operator compacts the heap itself once a burst is over (see README).
ENTRYPOINT ["node", "--max-semi-space-size=2", "--heap-growing-percent=10", "dist/src/main.js"]
