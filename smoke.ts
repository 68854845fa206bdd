import { Config, ConfigProvider, Effect, Schema } from "effect"
const c = Config.all({
  enable: Config.Boolean("MDP_FB_ENABLE_FEEDBACK").pipe(Config.withDefault(true)),
  ok: Config.schema(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 })), "MDP_FB_SCALE_OK").pipe(
    Config.withDefault(1)
  ),
  cap: Config.Int("MDP_RATE_CAPACITY").pipe(Config.withDefault(60))
})
for (
  const env of [
    {},
    { MDP_FB_ENABLE_FEEDBACK: "yes", MDP_FB_SCALE_OK: "0.5" },
    { MDP_FB_ENABLE_FEEDBACK: "maybe" },
    { MDP_FB_SCALE_OK: "1.5" },
    { MDP_RATE_CAPACITY: "abc" },
    { MDP_FB_SCALE_OK: "" }
  ]
) {
  const r = Effect.runSync(Effect.result(
    Effect.gen(function*() {
      return yield* c
    }).pipe(Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnvRecord(env as any)))
  ))
  console.log(JSON.stringify(env), r._tag === "Success" ? JSON.stringify(r.success) : String(r.failure))
}
