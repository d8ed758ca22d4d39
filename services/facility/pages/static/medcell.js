// medcell: small progressive enhancements. Every page works without this file.
"use strict";

(function () {
  function localTimes(root) {
    var lang = document.documentElement.lang || "de";
    var format = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var moment = new Date(el.getAttribute("datetime"));
      if (!isNaN(moment)) {
        el.textContent = format.format(moment);
      }
    });
  }

  function setupPrint() {
    // The letter's "Print" button: the browser's own print dialog (hidden without this file).
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { window.print(); });
    });
  }

  function setupCopy() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      var field = document.getElementById(button.getAttribute("data-copy"));
      var status = document.querySelector("[data-copy-status]");
      button.hidden = false;
      button.addEventListener("click", function () {
        field.select();
        var done = function () {
          if (status) { status.textContent = button.getAttribute("data-copied"); }
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(field.value).then(done, function () {
            document.execCommand("copy");
            done();
          });
        } else {
          document.execCommand("copy");
          done();
        }
      });
    });
  }

  function setupFileChecks() {
    document.querySelectorAll("input[type=file][data-max-bytes]").forEach(function (input) {
      var error = document.getElementById(input.getAttribute("data-error"));
      var max = parseInt(input.getAttribute("data-max-bytes"), 10);
      var allowed = /^(image\/(jpeg|png|gif|webp|heic|heif)|application\/pdf)$/;
      input.addEventListener("change", function () {
        var file = input.files[0];
        var message = "";
        if (file && file.size > max) {
          message = input.getAttribute("data-msg-size");
        } else if (file && file.type && !allowed.test(file.type)) {
          message = input.getAttribute("data-msg-type");
        }
        input.setCustomValidity(message);
        error.textContent = message;
        error.hidden = !message;
      });
    });
  }

  // The compose form's counter: how many characters are left (the field's maxlength stays).
  function setupCounter() {
    document.querySelectorAll("textarea[data-counter]").forEach(function (field) {
      var out = document.getElementById(field.getAttribute("data-counter"));
      var max = parseInt(field.getAttribute("maxlength"), 10);
      function update() {
        var left = max - field.value.length;
        out.textContent = left === 1 ? field.getAttribute("data-count-one")
          : field.getAttribute("data-count-text").replace("{n}", left);
        out.classList.toggle("low", left < max / 10);
      }
      field.addEventListener("input", update);
      update();
    });
  }

  // Quick replies: put the chosen text into the message at the cursor instead of reloading.
  function setupQuickReplies() {
    var form = document.getElementById("quick-form");
    var field = document.getElementById("body");
    if (!form || !field) { return; }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var select = form.querySelector("select");
      var text = select.options[select.selectedIndex].getAttribute("data-text") || "";
      var start = field.selectionStart || 0;
      var end = field.selectionEnd || 0;
      field.setRangeText(text, start, end, "end");
      field.dispatchEvent(new Event("input"));
      field.focus();
    });
  }

  function messageItem(list, m) {
    var side = list.getAttribute("data-side");
    var own = m.author === side;
    var li = document.createElement("li");
    li.className = "msg " + (own ? "own" : "other");
    li.id = "m-" + m.id;
    var meta = document.createElement("p");
    meta.className = "meta";
    var who = document.createElement("span");
    who.className = "who";
    // Staff messages by the colleague's name; "you" only for what the reader wrote.
    if (m.own) {
      who.textContent = list.getAttribute("data-label-own");
    } else if (m.author === "staff" && m.author_name) {
      who.textContent = list.getAttribute("data-label-named").replace("{name}", m.author_name);
    } else if (m.author === "staff") {
      who.textContent = list.getAttribute("data-label-team");
    } else {
      who.textContent = list.getAttribute("data-label-other");
    }
    var when = document.createElement("time");
    when.setAttribute("datetime", m.created_at);
    meta.append(who, " · ", when);
    li.append(meta);
    if (m.body) {
      var body = document.createElement("p");
      body.className = "body";
      body.textContent = m.body;
      li.append(body);
    }
    (m.attachments || []).forEach(function (a) {
      var p = document.createElement("p");
      p.className = "file";
      var url = list.getAttribute("data-file-base") + encodeURIComponent(a.id);
      if (/^image\/(png|jpeg|gif|webp)$/.test(a.content_type || "")) {
        // Decrypted on request by the download route; nothing like a thumbnail is stored.
        var preview = document.createElement("p");
        preview.className = "preview";
        var link = document.createElement("a");
        link.href = url;
        var img = document.createElement("img");
        img.src = url;
        img.alt = a.filename;
        img.loading = "lazy";
        link.append(img);
        preview.append(link);
        li.append(preview);
      }
      var open = document.createElement("a");
      open.href = url;
      open.textContent = a.filename;
      var download = document.createElement("a");
      download.href = url + "?download=1";
      download.setAttribute("download", a.filename);
      download.textContent = list.getAttribute("data-label-download");
      p.append(open, " · ", download);
      li.append(p);
    });
    if (own) {
      var seen = document.createElement("p");
      seen.className = "seen";
      seen.textContent = list.getAttribute("data-label-read");
      seen.hidden = !m.read;
      li.append(seen);
    }
    localTimes(li);
    return li;
  }

  // Read receipts: every own message up to the newest one the other side has read.
  function markSeen(list, upTo) {
    if (!upTo || !document.getElementById("m-" + upTo)) { return; }
    var items = list.querySelectorAll("li.msg.own");
    for (var i = 0; i < items.length; i++) {
      var seen = items[i].querySelector(".seen");
      if (seen) { seen.hidden = false; }
      if (items[i].id === "m-" + upTo) { break; }
    }
  }

  // Live updates: ask for new messages every 3 s while the page is visible, never while hidden.
  // The header marks the request as a poll: it does not keep the facility awake, and a sleeping
  // facility's gateway answers it with 204 (nothing new) without waking it.
  function setupPolling() {
    var list = document.getElementById("messages");
    if (!list || !list.getAttribute("data-poll") || !window.fetch) { return; }
    var expires = document.getElementById("expires");
    var delay = 3000;
    var stopped = false;
    var running = false;
    var timer = null;

    function gone() {
      stopped = true;
      document.getElementById("gone").hidden = false;
      document.querySelectorAll("main form").forEach(function (form) {
        form.querySelectorAll("button, input, textarea").forEach(function (el) { el.disabled = true; });
      });
    }

    function schedule() {
      if (timer !== null) { window.clearTimeout(timer); }
      timer = window.setTimeout(function () { timer = null; poll(); }, delay);
    }

    function show(data) {
      if (!data || !data.messages) { return; }
      if (!data.messages.length) { markSeen(list, data.read_up_to); return; }
      data.messages.forEach(function (m) {
        if (!document.getElementById("m-" + m.id)) { list.append(messageItem(list, m)); }
      });
      markSeen(list, data.read_up_to);
      var last = data.messages[data.messages.length - 1];
      list.setAttribute("data-after", last.id);
      document.getElementById("empty").hidden = true;
      if (expires) {
        var retention = parseInt(expires.getAttribute("data-retention"), 10) * 1000;
        var until = new Date(new Date(last.created_at).getTime() + retention);
        expires.setAttribute("datetime", until.toISOString());
        localTimes(expires.parentNode);
      }
    }

    function poll() {
      // Hidden: stop here; becoming visible again polls at once (see below).
      if (stopped || running || document.hidden) { return; }
      running = true;
      var url = list.getAttribute("data-poll");
      var after = list.getAttribute("data-after");
      if (after) { url += "?after=" + encodeURIComponent(after); }
      fetch(url, {
        credentials: "same-origin",
        cache: "no-store",
        headers: {
          "X-CSRF-Token": list.getAttribute("data-csrf"),
          "X-Medcell-Poll": "1",
          "Accept": "application/json"
        }
      }).then(function (response) {
        if (response.status === 404 || response.status === 401) { gone(); return null; }
        if (response.status === 204) { return null; }  // nothing new
        return response.ok ? response.json() : null;
      }).then(show).catch(function () {
        // Offline for a moment: try again on the next tick.
      }).then(function () {
        running = false;
        if (!stopped) { schedule(); }
      });
    }

    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) { poll(); }
    });
    schedule();
  }

  // The list's unread badges and the tab title's "(n)", refreshed every 10 s while visible.
  // Marked as a poll like the conversation's: it keeps no facility awake and wakes none.
  function setupUnread() {
    var list = document.getElementById("convs");
    if (!list || !list.getAttribute("data-unread-poll") || !window.fetch) { return; }
    var timer = null;
    var running = false;

    function apply(data) {
      if (!data || !data.conversations) { return; }
      var label = list.getAttribute("data-label-unread");
      var unread = 0;
      list.querySelectorAll("li[data-conv]").forEach(function (li) {
        var n = data.conversations[li.getAttribute("data-conv")] || 0;
        var badge = li.querySelector("[data-badge]");
        badge.textContent = label.replace("{n}", n);
        badge.hidden = !n;
        li.classList.toggle("unread", n > 0);
        if (n) { unread += 1; }
      });
      document.title = (unread ? "(" + unread + ") " : "") + list.getAttribute("data-title");
    }

    function poll() {
      if (running || document.hidden) { return; }
      running = true;
      fetch(list.getAttribute("data-unread-poll"), {
        credentials: "same-origin",
        cache: "no-store",
        headers: {
          "X-CSRF-Token": list.getAttribute("data-csrf"),
          "X-Medcell-Poll": "1",
          "Accept": "application/json"
        }
      }).then(function (response) {
        return response.status === 200 ? response.json() : null;
      }).then(apply).catch(function () {}).then(function () {
        running = false;
        schedule();
      });
    }

    function schedule() {
      if (timer !== null) { window.clearTimeout(timer); }
      timer = window.setTimeout(function () { timer = null; poll(); }, 10000);
    }

    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) { poll(); }
    });
    schedule();
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    setupCopy();
    setupPrint();
    setupFileChecks();
    setupCounter();
    setupQuickReplies();
    setupPolling();
    setupUnread();
  });
})();
