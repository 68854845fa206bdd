/**
 * `npm run bench pulse`: the Pulse transport on the local Redis
 * (REDIS_URL, default 127.0.0.1:6379).
 *
 * Latency: a plain node-redis client (another "process") XADDs one store
 * body at a time; the time until the new scale is applied in the
 * RateCoordinator (taken where the coordinator applies it) through
 * PulseConsumer → FeedbackBus → FeedbackHandler → RateController, levels
 * alternating so that every event changes the scale. Paced: the next XADD
 * goes out 1 ms after the previous event was applied.
 *
 * Throughput: the stream is pre-filled, then one consumer (batched reads,
 * one XACK per batch) hands every entry to the bus, where the handler
 * applies it; measured from the consumer's start until every entry is
 * acknowledged. Each case uses its own namespace; its keys are deleted at
 * the end.
 */
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import { Deferred, Effect, Exit, Layer } from "effect"
import type * as Scope from "effect/Scope"
import {
  type BackpressureLevel,
  defaultPolicy,
  FeedbackBus,
  FeedbackHandler,
  FeedbackPublisher,
  RateCoordinator
} from "market-data-pipeline"
import { createClient } from "redis"
import { deadLetterKey, encodeEntry, streamKey } from "../src/pulse/PulseCodec.ts"
import { PulseConsumer, type PulseConsumerOptions } from "../src/pulse/PulseConsumer.ts"
import { feedbackEvent, formatRate, percentile, runPromise, table, timedController } from "./harness.ts"

const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
const runId = `${Date.now().toString(36)}${process.pid}`

const newClient = () => createClient({ url: redisUrl })

const withClient = async <A>(f: (client: ReturnType<typeof newClient>) => Promise<A>): Promise<A> => {
  const client = newClient()
  client.on("error", () => {})
  await client.connect()
  try {
    return await f(client)
  } finally {
    await client.close()
  }
}

const deleteNamespace = (namespace: string) =>
  withClient((client) => client.sendCommand(["DEL", streamKey(namespace), deadLetterKey(namespace)]))

// Where the coordinator applies an adjustment: completes the waiter of the event in flight.
let applied: Deferred.Deferred<void> | undefined
let appliedCount = 0

const controller = timedController(() => {
  appliedCount++
  if (applied !== undefined) Deferred.doneUnsafe(applied, Exit.void)
})

/** The loop: a coordinator, the bus, the handler, and a consumer on Redis feeding the bus. */
const withLoop = <A, E>(
  options: PulseConsumerOptions,
  f: (
    coordinator: RateCoordinator["Service"],
    consumer: PulseConsumer["Service"]
  ) => Effect.Effect<A, E, Scope.Scope>
) =>
  Effect.gen(function*() {
    const coordinator = yield* RateCoordinator
    yield* coordinator.registerProvider("ibkr", { capacity: 100, refillRate: 100 })
    yield* FeedbackHandler.run({ provider: "ibkr", policy: defaultPolicy, maxCoordinators: 1000 })
    const publisher = yield* FeedbackPublisher
    const consumer = yield* PulseConsumer.make(options, (feedback) => publisher.publish(feedback.event))
    return yield* f(coordinator, consumer)
  }).pipe(
    // the consumer's scope closes before its Redis client does
    Effect.scoped,
    Effect.provide(Layer.mergeAll(
      controller.pipe(Layer.provideMerge(RateCoordinator.layer)),
      Layer.orDie(FeedbackBus.layerWith({ maxCoordinators: 1000 })),
      NodeRedis.layer({ url: redisUrl, disableOfflineQueue: true })
    ))
  )

const latency = (events: number, warmup: number) => {
  const namespace = `bench${runId}lat`
  return Effect.ensuring(
    withLoop({ namespace, consumer: "bench" }, (coordinator, consumer) =>
      Effect.gen(function*() {
        const client = yield* Effect.acquireRelease(
          Effect.promise(async () => {
            const client = newClient()
            await client.connect()
            return client
          }),
          (client) => Effect.promise(() => client.close())
        )
        const key = consumer.stream
        // the consumer is reading before the first XADD
        while (!(yield* consumer.stats).connected) yield* Effect.sleep(5)
        const samples: Array<number> = []
        for (let i = 0; i < warmup + events; i++) {
          const level: BackpressureLevel = i % 2 === 0 ? "soft" : "ok"
          const data = encodeEntry(feedbackEvent("store_01", level, i), { ts: Date.now() / 1000 })
          const done = Deferred.makeUnsafe<void>()
          applied = done
          const start = performance.now()
          yield* Effect.promise(() => client.sendCommand(["XADD", key, "*", "data", data]))
          yield* Deferred.await(done)
          const end = performance.now()
          applied = undefined
          if ((yield* coordinator.state("ibkr")).scale !== (level === "soft" ? 0.5 : 1)) {
            throw new Error("scale not applied")
          }
          if (i >= warmup) samples.push((end - start) * 1000)
          yield* Effect.sleep(1)
        }
        return samples.sort((a, b) => a - b)
      })),
    Effect.promise(() => deleteNamespace(namespace))
  )
}

/**
 * The floor: the same paced XADDs read by a bare node-redis XREADGROUP BLOCK loop (no decoding,
 * no bus, no handler, no XACK), from the XADD to the reply.
 */
const floor = async (events: number, warmup: number): Promise<Array<number>> => {
  const namespace = `bench${runId}floor`
  const key = streamKey(namespace)
  const writer = newClient()
  const reader = newClient()
  await writer.connect()
  await reader.connect()
  try {
    await writer.sendCommand(["XGROUP", "CREATE", key, "floor", "$", "MKSTREAM"])
    const samples: Array<number> = []
    for (let i = 0; i < warmup + events; i++) {
      const data = encodeEntry(feedbackEvent("store_01", i % 2 === 0 ? "soft" : "ok", i), { ts: Date.now() / 1000 })
      const read = reader.sendCommand([
        "XREADGROUP",
        "GROUP",
        "floor",
        "c",
        "COUNT",
        "32",
        "BLOCK",
        "2000",
        "STREAMS",
        key,
        ">"
      ])
      // the read is on the server, blocked, before the XADD goes out
      await new Promise((resolve) => setTimeout(resolve, 1))
      const start = performance.now()
      await writer.sendCommand(["XADD", key, "*", "data", data])
      await read
      if (i >= warmup) samples.push((performance.now() - start) * 1000)
    }
    return samples.sort((a, b) => a - b)
  } finally {
    await writer.sendCommand(["DEL", key])
    await writer.close()
    await reader.close()
  }
}

/** Pre-fills `entries` bodies across 100 coordinators (pipelined XADDs), without MAXLEN. */
const prefill = (namespace: string, entries: number) =>
  withClient(async (client) => {
    const key = streamKey(namespace)
    const levels: ReadonlyArray<BackpressureLevel> = ["ok", "soft", "hard"]
    const ts = Date.now() / 1000
    for (let i = 0; i < entries; i += 2000) {
      const chunk: Array<Promise<unknown>> = []
      for (let j = i; j < Math.min(entries, i + 2000); j++) {
        const data = encodeEntry(feedbackEvent(`store_${j % 100}`, levels[(j * 7) % 3]!, j), { ts })
        chunk.push(client.sendCommand(["XADD", key, "*", "data", data]))
      }
      await Promise.all(chunk)
    }
  })

const throughput = (entries: number, count: number) => {
  const namespace = `bench${runId}thr${count}`
  return Effect.ensuring(
    Effect.gen(function*() {
      yield* Effect.promise(() => prefill(namespace, entries))
      return yield* withLoop({ namespace, consumer: "bench", count }, (_, consumer) =>
        Effect.gen(function*() {
          appliedCount = 0
          const start = performance.now()
          while ((yield* consumer.stats).acked < entries) yield* Effect.sleep(1)
          const elapsed = (performance.now() - start) / 1000
          const stats = yield* consumer.stats
          if (stats.handled !== entries) throw new Error(`handled ${stats.handled} of ${entries}`)
          return { rate: entries / elapsed, elapsed, applied: appliedCount }
        }))
    }),
    Effect.promise(() => deleteNamespace(namespace))
  )
}

export const run = async (): Promise<void> => {
  const events = 2000
  const samples = await runPromise(latency(events, 200))
  const bare = await floor(events, 200)
  const at = (xs: ReadonlyArray<number>, q: number) => `${(percentile(xs, q) / 1000).toFixed(3)} ms`
  table(
    `Pulse: XADD (another client) → new scale applied in RateCoordinator (${events.toLocaleString()} events, paced)`,
    [
      ["measure", "market-data-pipeline", "floor: bare XREADGROUP BLOCK reply", "target"],
      ["p50", at(samples, 0.5), at(bare, 0.5), ""],
      ["p99", at(samples, 0.99), at(bare, 0.99), "< 2 ms"],
      ["p99.9", at(samples, 0.999), at(bare, 0.999), ""],
      ["max", at(samples, 1), at(bare, 1), ""]
    ]
  )

  const entries = 200_000
  const rows: Array<readonly [string, string, string, string]> = []
  await runPromise(throughput(20_000, 512)) // warm up
  for (const count of [512, 32]) {
    const result = await runPromise(throughput(entries, count))
    rows.push([
      `COUNT ${count}`,
      formatRate(result.rate),
      `${result.elapsed.toFixed(2)} s`,
      result.applied.toLocaleString("en-US")
    ])
  }
  table(
    `Pulse: sustained consume, ${entries.toLocaleString("en-US")} pre-filled entries (100 coordinators) through one ` +
      "consumer → bus → handler, until all acked (target ≥ 100k/s)",
    [["read batch", "entries/s", "time", "adjustments applied"], ...rows]
  )
}
