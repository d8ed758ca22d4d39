// medcell: small progressive enhancements. Every page works without this file.
"use strict";

(function () {
  function localTimes(root) {
    var lang = document.documentElement.lang || "de";
    // In the practice's time zone, as the page without script shows it.
    var options = { dateStyle: "medium", timeStyle: "short" };
    var zone = document.body.getAttribute("data-tz");
    var format;
    try {
      format = new Intl.DateTimeFormat(lang, zone ? Object.assign({ timeZone: zone }, options)
        : options);
    } catch (e) {
      format = new Intl.DateTimeFormat(lang, options);
    }
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

  // Each chosen file checked at once (type, size): the message is next to the chooser.
  function setupFileChecks() {
    document.querySelectorAll("input[type=file][data-max-bytes]").forEach(function (input) {
      var error = document.getElementById(input.getAttribute("data-error"));
      var max = parseInt(input.getAttribute("data-max-bytes"), 10);
      var allowed = /^(image\/(jpeg|png|gif|webp|heic|heif)|application\/pdf)$/;
      input.addEventListener("change", function () {
        var message = "";
        Array.prototype.forEach.call(input.files, function (file) {
          // Photos the browser can scale (setupUpload) may be larger: they shrink before upload.
          if (file.size > max && !scalable(file)) {
            message = input.getAttribute("data-msg-size");
          } else if (file.type && !allowed.test(file.type)) {
            message = input.getAttribute("data-msg-type");
          }
        });
        input.setCustomValidity(message);
        input.toggleAttribute("aria-invalid", !!message);
        error.textContent = message;
        error.hidden = !message;
      });
    });
  }

  // Photos are scaled down in the browser before upload: at most MAX_EDGE pixels on the long
  // edge, as JPEG. Other files (PDF, GIF, HEIC the browser cannot draw) go as they are.
  var MAX_EDGE = 2048;
  function scalable(file) {
    return !!window.createImageBitmap && /^image\/(jpeg|png|webp)$/.test(file.type);
  }

  function scaled(file) {
    if (!scalable(file)) { return Promise.resolve(file); }
    return createImageBitmap(file, { imageOrientation: "from-image" }).then(function (bitmap) {
      var ratio = Math.min(1, MAX_EDGE / Math.max(bitmap.width, bitmap.height));
      if (ratio === 1 && file.size < 1024 * 1024) { return file; }
      var canvas = document.createElement("canvas");
      canvas.width = Math.round(bitmap.width * ratio);
      canvas.height = Math.round(bitmap.height * ratio);
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      return new Promise(function (resolve) {
        canvas.toBlob(function (blob) {
          var name = file.name.replace(/\.[^.]*$/, "") + ".jpg";
          resolve(blob ? new File([blob], name, { type: "image/jpeg" }) : file);
        }, "image/jpeg", 0.85);
      });
    }, function () { return file; });
  }

  function sizeText(n) {
    return n < 1024 * 1024 ? Math.max(1, Math.round(n / 1024)) + " KB"
      : (n / 1024 / 1024).toFixed(1) + " MB";
  }

  // Several files with progress: the form's files (scaled) go by XMLHttpRequest, which reports
  // progress; Send stays disabled meanwhile. The answer is the same as without the script.
  function setupUpload() {
    var form = document.getElementById("compose");
    if (!form || !window.FormData || !window.XMLHttpRequest) { return; }
    var inputs = form.querySelectorAll("input[type=file]");
    var chosenList = document.getElementById("chosen");
    var progress = document.getElementById("upload-progress");
    var button = form.querySelector("button[type=submit]");
    var error = document.getElementById("compose-error");
    var field = document.getElementById("body");
    var title = document.title;

    function chosen() {
      var all = [];
      inputs.forEach(function (input) {
        Array.prototype.forEach.call(input.files, function (f) { all.push(f); });
      });
      return all;
    }

    // What will be sent, before sending: each file by name and size, PDFs named as such and
    // shown in a preview. The preview is the chosen file itself, typed as a PDF whatever it holds
    // (never as a page of this origin), in a frame of its own; the pages' policy allows blob:
    // frames and nothing else.
    var previews = [];
    function showChosen() {
      previews.forEach(function (url) { URL.revokeObjectURL(url); });
      previews = [];
      chosenList.textContent = "";
      chosen().forEach(function (f) {
        var li = document.createElement("li");
        var pdf = f.type === "application/pdf";
        li.textContent = f.name + " (" + (pdf ? "PDF, " : "") + sizeText(f.size) + ")";
        if (pdf && window.URL && URL.createObjectURL) {
          var frame = document.createElement("iframe");
          var url = URL.createObjectURL(new Blob([f], { type: "application/pdf" }));
          previews.push(url);
          frame.className = "preview";
          frame.title = (document.documentElement.lang === "en" ? "Preview: " : "Vorschau: ")
            + f.name;
          frame.src = url;
          li.append(frame);
        }
        chosenList.append(li);
      });
      chosenList.hidden = !chosenList.children.length;
    }
    inputs.forEach(function (input) { input.addEventListener("change", showChosen); });

    function failed(text) {
      button.disabled = false;
      progress.hidden = true;
      error.textContent = text;
      error.hidden = false;
      document.title = (form.getAttribute("data-error-prefix") || "") + title;
      error.setAttribute("tabindex", "-1");
      error.focus();
    }

    form.addEventListener("submit", function (event) {
      var files = chosen();
      if (!files.length || event.defaultPrevented) { return; }  // text alone: a plain post
      event.preventDefault();
      button.disabled = true;
      progress.value = 0;
      progress.hidden = false;
      Promise.all(files.map(scaled)).then(function (ready) {
        var data = new FormData();
        data.append("csrf", form.querySelector("input[name=csrf]").value);
        data.append("body", field.value);
        ready.forEach(function (f) { data.append("file", f, f.name); });
        var xhr = new XMLHttpRequest();
        xhr.open("POST", form.action);
        xhr.upload.addEventListener("progress", function (e) {
          if (e.lengthComputable) { progress.value = Math.round(100 * e.loaded / e.total); }
        });
        xhr.addEventListener("load", function () {
          var landed = new URL(xhr.responseURL || form.action, location.href);
          if (xhr.status === 200 && landed.pathname === location.pathname) {
            // Posted: the page again, at the new message, without the draft.
            try {
              sessionStorage.removeItem("medcell-draft:" + location.pathname);
              sessionStorage.removeItem("medcell-sending:" + location.pathname);
            } catch (e) { /* storage off */ }
            history.replaceState(null, "", location.pathname + "#newest");
            location.reload();
            return;
          }
          if (xhr.status === 200) { location.href = landed.href; return; }  // e.g. to log in
          var page = new DOMParser().parseFromString(xhr.responseText, "text/html");
          var said = page.getElementById("compose-error") || page.querySelector("[role=alert]");
          failed(said && said.textContent.trim() ? said.textContent.trim()
            : inputs[0].getAttribute("data-msg-size"));
        });
        xhr.addEventListener("error", function () {
          failed(form.getAttribute("data-offline") || "");
        });
        xhr.send(data);
      });
    });
  }

  // The compose form's counter: how many characters are left (the field's maxlength stays).
  // Shown on every keystroke, announced only near the limit: its live region is a separate,
  // silent element that speaks when fewer than a tenth, 100, 20 or no characters are left.
  function setupCounter() {
    document.querySelectorAll("textarea[data-counter]").forEach(function (field) {
      var out = document.getElementById(field.getAttribute("data-counter"));
      var live = document.getElementById(field.getAttribute("data-counter-live"));
      var max = parseInt(field.getAttribute("maxlength"), 10);
      var marks = [Math.floor(max / 10), 100, 20, 0].filter(function (n) { return n < max; });
      var spoken = null;
      function text(left) {
        return left === 1 ? field.getAttribute("data-count-one")
          : field.getAttribute("data-count-text").replace("{n}", left);
      }
      function update() {
        var left = max - field.value.length;
        out.textContent = text(left);
        out.classList.toggle("low", left < max / 10);
        var mark = null;
        marks.forEach(function (n) { if (left <= n) { mark = n; } });
        if (live && mark !== null && mark !== spoken) { live.textContent = text(left); }
        spoken = mark;
      }
      field.addEventListener("input", update);
      update();
    });
  }

  // A typed message survives an expired session or form: kept in this tab's sessionStorage
  // while typed, put back when the page comes again without it, dropped once it was posted
  // (the page then opens at the new message, #m-<id>).
  function setupDraft() {
    var form = document.getElementById("compose");
    var field = document.getElementById("body");
    if (!form || !field || !window.sessionStorage) { return; }
    var key = "medcell-draft:" + location.pathname;
    var sending = "medcell-sending:" + location.pathname;
    try {
      if (sessionStorage.getItem(sending) && /^#m-/.test(location.hash)) {
        sessionStorage.removeItem(key);
      }
      sessionStorage.removeItem(sending);
      var draft = sessionStorage.getItem(key);
      if (draft && !field.value) {
        field.value = draft;
        field.dispatchEvent(new Event("input"));
        var note = document.getElementById("draft-note");
        if (note) { note.hidden = false; }
      }
      field.addEventListener("input", function () {
        if (field.value) { sessionStorage.setItem(key, field.value); }
        else { sessionStorage.removeItem(key); }
      });
      form.addEventListener("submit", function () {
        if (field.value) { sessionStorage.setItem(key, field.value); }
        sessionStorage.setItem(sending, "1");
      });
    } catch (e) {
      // Storage switched off: the form works as without the script.
    }
  }

  // After a post the page opens at the new message; with an error, at the error. Focus goes
  // there too, so a screen reader reads it instead of starting at the top.
  function setupFocus() {
    var error = document.querySelector("main [role=alert]:not([hidden])");
    var field = document.querySelector("main [autofocus]");
    var target = null;
    if (field) {
      target = field;  // the field in error (the browser focuses it without the script too)
    } else if (error && error.textContent.trim()) {
      target = error;
    } else if (/^#m-[A-Za-z0-9_-]+$/.test(location.hash)) {
      target = document.getElementById(location.hash.slice(1));
    } else if (location.hash === "#newest") {
      target = document.querySelector("#messages > li:last-child");
    }
    if (target) {
      if (!target.hasAttribute("tabindex")) { target.setAttribute("tabindex", "-1"); }
      target.focus();
    }
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
    if (m.deleted_at || m.edited_at) { li.setAttribute("data-changed", m.deleted_at || m.edited_at); }
    var meta = document.createElement("p");
    meta.className = "meta";
    var who = document.createElement("span");
    who.className = "who";
    // Staff messages by the colleague's name; "you" only for what the reader wrote.
    if (m.automatic) {
      who.textContent = list.getAttribute("data-label-automatic");
    } else if (m.own) {
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
    if (m.edited_at) {
      var edited = document.createElement("span");
      var editedWhen = document.createElement("time");
      edited.className = "edited";
      editedWhen.setAttribute("datetime", m.edited_at);
      edited.append(list.getAttribute("data-label-corrected"), " ", editedWhen);
      meta.append(" · ", edited);
    }
    li.append(meta);
    if (m.deleted_at) {
      var deleted = document.createElement("p");
      deleted.className = "body deleted";
      deleted.textContent = list.getAttribute("data-label-deleted");
      li.append(deleted);
    } else if (m.body) {
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

  // Live updates: ask for new messages (and corrections and deletions of those shown) every 3 s
  // while the page is visible, never while hidden.
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

    // A message shown already that its writer corrected or deleted since: shown anew, keeping
    // the page's own parts of it (the link to change it while that is allowed, the newest mark).
    function replace(old, m) {
      var item = messageItem(list, m);
      var edit = old.querySelector("p.edit");
      if (edit && !m.deleted_at) { item.insertBefore(edit, item.querySelector(".seen")); }
      var newest = old.querySelector("#newest");
      if (newest) { item.prepend(newest); }
      old.replaceWith(item);
    }

    function show(data) {
      if (!data || !data.messages) { return; }
      if (data.since !== undefined) { list.setAttribute("data-since", data.since); }
      var fresh = [];
      data.messages.forEach(function (m) {
        var old = document.getElementById("m-" + m.id);
        var changed = m.deleted_at || m.edited_at || "";
        if (!old) {
          list.append(messageItem(list, m));
          fresh.push(m);
        } else if (changed && old.getAttribute("data-changed") !== changed) {
          replace(old, m);
        }
      });
      markSeen(list, data.read_up_to);
      if (!fresh.length) { return; }
      var last = fresh[fresh.length - 1];
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
      var since = list.getAttribute("data-since");
      if (after) {
        url += "?after=" + encodeURIComponent(after);
        if (since) { url += "&since=" + encodeURIComponent(since); }
      }
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
    setupUpload();
    setupCounter();
    setupDraft();
    setupFocus();
    setupQuickReplies();
    setupPolling();
    setupUnread();
  });
})();
