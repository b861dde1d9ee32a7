import { ApiError } from '../api.ts'
import { empty } from '../dom.ts'

/**
 * A panel whose data could not be loaded. When the API is unreachable the banner says so and the
 * panel keeps what it last showed (stale numbers beat a blank wall screen); an error answer is
 * shown in the panel.
 */
export function failed(root: HTMLElement, error: unknown): void {
  if (error instanceof ApiError) {
    root.replaceChildren(empty(`Could not load: ${error.title}${error.detail ? ` — ${error.detail}` : ''}`))
  } else if (!root.hasChildNodes()) {
    root.replaceChildren(empty('Waiting for the API…'))
  }
}
