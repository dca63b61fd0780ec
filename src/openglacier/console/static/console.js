// OpenGlacier console: live refresh, and upload with the tree hash computed here.
"use strict";

const MIB = 1048576;

// Pages listing jobs in progress reload themselves (a data attribute, no inline script).
function startRefresh() {
  const seconds = Number(document.body.dataset.refresh || 0);
  if (seconds > 0) setTimeout(() => window.location.reload(), seconds * 1000);
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256(data) {
  return crypto.subtle.digest("SHA-256", data);
}

// The Glacier tree hash: SHA-256 of each 1 MiB, then of each pair, up to one.
async function treeHash(leaves) {
  let level = leaves;
  while (level.length > 1) {
    const next = [];
    for (let i = 0; i < level.length; i += 2) {
      if (i + 1 === level.length) { next.push(level[i]); continue; }
      const pair = new Uint8Array(64);
      pair.set(new Uint8Array(level[i]), 0);
      pair.set(new Uint8Array(level[i + 1]), 32);
      next.push(await sha256(pair));
    }
    level = next;
  }
  return level[0];
}

async function leavesOf(bytes) {
  const leaves = [];
  for (let at = 0; at < bytes.byteLength; at += MIB) {
    leaves.push(await sha256(bytes.subarray(at, Math.min(at + MIB, bytes.byteLength))));
  }
  return leaves;
}

class Uploader {
  constructor(form) {
    this.form = form;
    this.api = `${form.dataset.api}/-/vaults/${encodeURIComponent(form.dataset.vault)}`;
    this.status = form.querySelector("#status");
    this.progress = form.querySelector("#progress");
  }

  headers(extra) {
    return Object.assign({ "x-amz-glacier-version": "2012-06-01", "x-csrf-token": this.form.dataset.csrf }, extra);
  }

  async call(method, path, headers, body) {
    const response = await fetch(this.api + path, { method, headers: this.headers(headers), body, credentials: "same-origin" });
    if (!response.ok) {
      let message = `${response.status}`;
      try { message = (await response.json()).message || message; } catch (e) { /* not JSON */ }
      throw new Error(message);
    }
    return response;
  }

  async run(file, description, partSize) {
    if (!window.crypto || !crypto.subtle) {
      throw new Error("This page needs HTTPS (or localhost) to compute hashes in the browser.");
    }
    if (file.size === 0) throw new Error("An archive holds at least one byte: choose a file that is not empty.");
    const started = await this.call("POST", "/multipart-uploads", {
      "x-amz-part-size": String(partSize), "x-amz-archive-description": description,
    });
    const uploadId = started.headers.get("x-amz-multipart-upload-id");
    const leaves = [];
    for (let first = 0; first < file.size; first += partSize) {
      const last = Math.min(first + partSize, file.size) - 1;
      const bytes = new Uint8Array(await file.slice(first, last + 1).arrayBuffer());
      const partLeaves = await leavesOf(bytes);
      leaves.push(...partLeaves);
      await this.call("PUT", `/multipart-uploads/${uploadId}`, {
        "content-range": `bytes ${first}-${last}/*`,
        "x-amz-sha256-tree-hash": hex(await treeHash(partLeaves)),
        "x-amz-content-sha256": hex(await sha256(bytes)),
        "content-type": "application/octet-stream",
      }, bytes);
      this.show(Math.round(100 * (last + 1) / file.size), `Sent ${(last + 1).toLocaleString()} of ${file.size.toLocaleString()} bytes`);
    }
    const treeHex = hex(await treeHash(leaves));
    const done = await this.call("POST", `/multipart-uploads/${uploadId}`, {
      "x-amz-archive-size": String(file.size), "x-amz-sha256-tree-hash": treeHex,
    });
    return { archiveId: done.headers.get("x-amz-archive-id"), treeHex };
  }

  show(percent, text) {
    this.progress.value = percent;
    this.status.textContent = text;
  }
}

function startUpload() {
  const form = document.getElementById("upload");
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = form.querySelector("#file").files[0];
    if (!file) return;
    const uploader = new Uploader(form);
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const { archiveId, treeHex } = await uploader.run(
        file, form.querySelector("#description").value, Number(form.querySelector("#part-size").value));
      uploader.show(100, "");
      const link = document.createElement("a");
      link.href = `${form.dataset.console}/vaults/${encodeURIComponent(form.dataset.vault)}/archives/${encodeURIComponent(archiveId)}`;
      link.id = "uploaded";
      link.textContent = `Uploaded: archive ${archiveId} (tree hash ${treeHex})`;
      uploader.status.replaceChildren(link);
    } catch (error) {
      uploader.status.textContent = `Upload failed: ${error.message}`;
      uploader.status.classList.add("error");
    } finally {
      button.disabled = false;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => { startRefresh(); startUpload(); });
