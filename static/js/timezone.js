// Tells ECP the browser's time zone (Intl), in the ecp_tz cookie: pages show times in it
// until the user picks a zone under "Your preferences". No inline script (CSP).
(function () {
  "use strict";
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    return;
  }
  if (!zone || !/^[A-Za-z0-9_+\-\/]{1,64}$/.test(zone)) { return; }
  var current = document.cookie.match(/(?:^|;\s*)ecp_tz=([^;]*)/);
  if (current && decodeURIComponent(current[1]) === zone) { return; }
  var secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = "ecp_tz=" + encodeURIComponent(zone) + "; Path=/; Max-Age=31536000; SameSite=Lax" + secure;
}());
