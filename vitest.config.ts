import { defaultServerConditions } from "vite"
import { defineConfig } from "vitest/config"

// Tests import the package by its name and run its TypeScript sources.
const conditions = ["market-data-pipeline:source", ...defaultServerConditions]

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000
  }
})
