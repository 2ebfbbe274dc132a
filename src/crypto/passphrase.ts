import { readFile } from 'node:fs/promises'

/** Thrown when no passphrase source is available and prompting is impossible. */
export class PassphraseRequiredError extends Error {
  override readonly name = 'PassphraseRequiredError'
}

/** Options for {@link resolvePassphrase}. */
export interface PassphraseOptions {
  /** A file whose first line is the passphrase (`--passphrase-file`). */
  passphraseFile?: string | undefined
  /** Where `FACET_PASSPHRASE` is read. @default process.env */
  env?: NodeJS.ProcessEnv
  /** What the prompt asks. @default 'Passphrase: ' */
  prompt?: string
  /** Ask twice and require both to match (for new identities). @default false */
  confirm?: boolean
  /** The terminal to prompt on. @default process.stdin / process.stderr */
  input?: NodeJS.ReadStream
  output?: NodeJS.WritableStream
}

/**
 * Finds the passphrase: from `passphraseFile`, else `FACET_PASSPHRASE`, else a hidden
 * prompt on the terminal. Never prompts when stdin is not a terminal: throws
 * {@link PassphraseRequiredError} naming the flag and the variable to set instead.
 */
export async function resolvePassphrase(options: PassphraseOptions = {}): Promise<string> {
  if (options.passphraseFile) {
    const text = await readFile(options.passphraseFile, 'utf8')
    return text.split(/\r?\n/)[0] ?? ''
  }
  const env = options.env ?? process.env
  if (env.FACET_PASSPHRASE !== undefined) return env.FACET_PASSPHRASE
  const input = options.input ?? process.stdin
  if (!input.isTTY) {
    throw new PassphraseRequiredError(
      'a passphrase is needed and stdin is not a terminal, so FacetFS will not prompt: pass --passphrase-file FILE or set FACET_PASSPHRASE',
    )
  }
  const output = options.output ?? process.stderr
  const questions = [options.prompt ?? 'Passphrase: ']
  if (options.confirm) questions.push('Repeat passphrase: ')
  const [first, again] = await promptHidden(questions, input, output)
  if (options.confirm && again !== first) throw new PassphraseRequiredError('the passphrases do not match')
  return first ?? ''
}

/**
 * Asks each question in turn with echo off and resolves the answers. One listener reads
 * them all, so answers typed ahead (or pasted together) go to the right question.
 */
function promptHidden(questions: readonly string[], input: NodeJS.ReadStream, output: NodeJS.WritableStream): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const answers: string[] = []
    let text = ''
    output.write(questions[0] ?? '')
    const wasRaw = input.isRaw
    input.setRawMode?.(true)
    input.resume()
    input.setEncoding('utf8')
    const finish = (err?: Error) => {
      input.setRawMode?.(wasRaw)
      input.pause()
      input.off('data', onData)
      if (err) reject(err)
      else resolve(answers)
    }
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          output.write('\n')
          answers.push(text)
          text = ''
          if (answers.length === questions.length) return finish()
          output.write(questions[answers.length]!)
        } else if (ch === '\u0003') {
          output.write('\n')
          return finish(new PassphraseRequiredError('cancelled'))
        } else if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1)
        else text += ch
      }
    }
    input.on('data', onData)
  })
}
