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
ENTRYPOINT ["node", "dist/src/main.js"]
