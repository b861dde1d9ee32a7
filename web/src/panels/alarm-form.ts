/**
 * The inline form under an alarm's row for acknowledging, shelving or unshelving it: a comment
 * (required to shelve, kept in the history either way) and, to shelve, for how long. A form on
 * the page rather than window.prompt: it is keyboard-operable, labelled, stays open across the
 * list's live updates, and shows the API's answer when it refuses.
 */

import { minutesText, SHELVE_MINUTES } from '../alarms.ts'
import type { Alarm } from '../api.ts'
import { h } from '../dom.ts'

export type FormAction = 'acknowledge' | 'shelve' | 'unshelve'

export const ACTION_WORDS: Record<FormAction, string> = {
  acknowledge: 'Acknowledge',
  shelve: 'Shelve',
  unshelve: 'Unshelve',
}

export interface FormHandlers {
  /** Does the action; answers what went wrong, or null when it was done. */
  submit(comment: string, minutes: number): Promise<string | null>
  cancel(): void
}

let forms = 0

export function actionForm(a: Alarm, action: FormAction, on: FormHandlers): HTMLFormElement {
  const id = `alarm-form-${++forms}`
  const what = a.subject ? `${a.rule} (${a.subject})` : a.rule
  const comment = h('input', {
    id: `${id}-comment`,
    name: 'comment',
    type: 'text',
    maxlength: 1000,
    required: action === 'shelve',
    placeholder: action === 'shelve' ? 'why (kept in the history)' : 'optional note',
    autocomplete: 'off',
  })
  const minutes = h(
    'select',
    { id: `${id}-minutes`, name: 'minutes' },
    ...SHELVE_MINUTES.map((m) => h('option', { value: m, selected: m === 60 }, minutesText(m))),
  )
  const error = h('p', { class: 'form-error', role: 'alert' })
  const submit = h('button', { type: 'submit', class: 'primary' }, ACTION_WORDS[action])
  const cancel = h('button', { type: 'button' }, 'Cancel')
  const form = h(
    'form',
    { class: 'alarm-form', 'data-action': action, 'aria-label': `${ACTION_WORDS[action]} ${what}` },
    h('label', { for: comment.id }, action === 'shelve' ? 'Comment' : 'Comment (optional)'),
    comment,
    ...(action === 'shelve' ? [h('label', { for: minutes.id }, 'for'), minutes] : []),
    submit,
    cancel,
    error,
  )
  cancel.addEventListener('click', () => on.cancel())
  form.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') on.cancel()
  })
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    submit.disabled = true
    error.textContent = ''
    const failed = await on.submit(comment.value.trim(), Number(minutes.value))
    submit.disabled = false
    if (failed) error.textContent = failed
  })
  return form
}
