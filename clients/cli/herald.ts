#!/usr/bin/env node
/** The `herald` command: servers, tokens, and a client for people at a terminal. */
import { Command } from 'commander'
import { benchCommand } from './commands/bench.js'
import { mqttCommands } from './commands/mqtt-commands.js'
import { queryCommands } from './commands/query.js'
import { serverCommand } from './commands/server.js'
import { tokenCommand } from './commands/token.js'

const program = new Command()
program
  .name('herald')
  .description('Herald: presence and messaging over MQTT')
  .showHelpAfterError('(run with --help for usage)')

serverCommand(program, 'start')
serverCommand(program, 'node')
serverCommand(program, 'presence')
tokenCommand(program)
mqttCommands(program)
queryCommands(program)
benchCommand(program)

await program.parseAsync(process.argv)
