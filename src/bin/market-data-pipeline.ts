#!/usr/bin/env node
/**
 * The `market-data-pipeline` executable (`npm start` runs `run`): it only
 * launches `service/Main.ts`, where the program, its layers and its exit
 * codes are, once `./launch.ts` has checked that the optional peer
 * dependencies the program imports are installed.
 *
 * @since 0.1.0
 */
import { launch } from "./launch.ts"

const { main } = await launch(() => import("../service/Main.ts"))
main()
