import { type ChildProcess, spawn } from 'node:child_process'
import { repoRoot } from '../../src/shared/paths.ts'

export interface GroupChild {
  child: ChildProcess
  /** everything it printed so far, stdout and stderr interleaved */
  output: () => string
  exited: Promise<number | null>
}

/**
 * A command in a process group of its own, as a terminal runs `npm start`: Ctrl-C is SIGINT to
 * the group (`killGroup`). Its output is collected; `onOutput` sees it as it comes.
 */
export function startInGroup(
  command: string,
  args: string[],
  env: Record<string, string> = {},
  onOutput: (output: string) => void = () => undefined,
): GroupChild {
  const child = spawn(command, args, {
    cwd: repoRoot,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, EVF_LOG_LEVEL: 'info', ...env },
  })
  let out = ''
  for (const stream of [child.stdout, child.stderr])
    stream?.on('data', (d) => {
      out += d
      onOutput(out)
    })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return { child, output: () => out, exited }
}

/** `evf stack up` with these flags, from the build (`dist/cli.js`). */
export const stackUp = (
  args: string[],
  env: Record<string, string> = {},
  onOutput?: (output: string) => void,
): GroupChild =>
  startInGroup(process.execPath, [`${repoRoot}dist/cli.js`, 'stack', 'up', ...args], env, onOutput)

export function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  try {
    if (pid) process.kill(-pid, signal)
  } catch {
    // already gone
  }
}
