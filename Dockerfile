# Build: docker build -t regcred-operator:0.1.0 .
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY generated ./generated
RUN npm run build && npm prune --omit=dev

FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# Numeric, so the kubelet can verify runAsNonRoot (a user name cannot be checked).
# 65532 owns nothing in the image; /app stays root-owned and read-only to it.
USER 65532:65532
EXPOSE 8081
# The same node flags as `npm start` (scripts/node-flags.test.ts checks they agree):
# a small young generation and V8's size-over-speed heap policy keep RSS growth
# under churn (thousands of Apps re-running) about 25 MB lower; see README.
ENTRYPOINT ["node", "--max-semi-space-size=2", "--optimize-for-size", "dist/src/main.js"]
