// ClickVote dashboard: plain ES modules, no build step. The routes, then the first render.
import { state } from "./api.js";
import { go, start } from "./router.js";
import { pageAnalytics } from "./pages/analytics.js";
import { pageLogin, pageRegister } from "./pages/auth.js";
import { pageGroup } from "./pages/group.js";
import { pageGroups } from "./pages/groups.js";
import { pageNotFound } from "./pages/notfound.js";
import { pageSettings } from "./pages/settings.js";

start([
  [/^\/$/, () => go(state.me ? "/analytics" : "/login", true)],
  [/^\/login$/, pageLogin, true],
  [/^\/register$/, pageRegister, true],
  [/^\/analytics$/, pageAnalytics],
  [/^\/groups$/, pageGroups],
  [/^\/groups\/([^/]+)$/, pageGroup],
  [/^\/settings$/, pageSettings],
  [/^/, pageNotFound],
]);
