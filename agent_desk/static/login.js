/* Sign-in page: sign in, change a generated first password, then go to the role's page. */
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const showError = (box, text) => { box.textContent = text; box.classList.remove("hidden"); };

  function afterSignIn(data) {
    Desk.csrf = data.csrf_token;
    if (data.user.must_change_password) {
      $("signin-form").classList.add("hidden");
      $("change-form").classList.remove("hidden");
      $("current").value = $("password").value;
      $("new1").focus();
      return;
    }
    location.assign(data.landing);
  }

  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("error").classList.add("hidden");
    $("submit").disabled = true;
    try {
      const data = await Desk.api("POST", "/api/auth/login", {
        username: $("username").value.trim(), password: $("password").value,
      });
      afterSignIn(data);
    } catch (err) {
      showError($("error"), err.message);
      $("password").value = "";
      $("password").focus();
    } finally {
      $("submit").disabled = false;
    }
  });

  $("change-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if ($("new1").value !== $("new2").value) { showError($("change-error"), Desk.t("pw_mismatch")); return; }
    try {
      const data = await Desk.api("POST", "/api/auth/password", {
        current: $("current").value, new: $("new1").value,
      });
      location.assign(data.landing);
    } catch (err) {
      showError($("change-error"), err.message);
    }
  });

  $("lang").addEventListener("click", () => Desk.toggleLang());
  Desk.applyLang();
  // A session that still has to change its password comes back here: offer the form again.
  fetch("/api/auth/me", { credentials: "same-origin" }).then((r) => (r.ok ? r.json() : null)).then((me) => {
    if (me && me.user.must_change_password) afterSignIn(me);
  }).catch(() => {});
})();
