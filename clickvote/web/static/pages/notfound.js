// A path of no page.
import { shell } from "../shell.js";

export function pageNotFound() {
  shell('<div class="panel empty"><h2>Page not found</h2><p><a href="/analytics">Back to the dashboard</a></p></div>');
}
