// Decoding the replay payload written by robotaxi/dashboard/_payload.py:
//   "RTXR" | uint32 header length | header JSON | arrays (each 8-byte aligned), all gzip-compressed.
// The page inflates it with the browser's own DecompressionStream: nothing is fetched from the network.

const VIEWS = {
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  float32: Float32Array,
  float64: Float64Array,
  int64: BigInt64Array,
};

function base64Bytes(text) {
  if (typeof Uint8Array.fromBase64 === 'function') {
    return Uint8Array.fromBase64(text);
  }
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export async function gunzip(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Response(stream).arrayBuffer();
}

/** Parse an inflated payload into {meta, arrays}; delta-encoded arrays are summed back in place. */
export function parsePayload(buffer) {
  const head = new DataView(buffer, 0, 8);
  const magic = String.fromCharCode(head.getUint8(0), head.getUint8(1), head.getUint8(2), head.getUint8(3));
  if (magic !== 'RTXR') throw new Error('not a robotaxi replay payload');
  const hlen = head.getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, hlen)));
  const base = 8 + hlen;
  const arrays = {};
  for (const spec of header.arrays) {
    const View = VIEWS[spec.dtype];
    if (!View) throw new Error(`unknown dtype ${spec.dtype}`);
    const a = new View(buffer, base + spec.offset, spec.length);
    if (spec.encoding === 'delta') {
      for (let i = 1; i < a.length; i++) a[i] += a[i - 1];
    }
    arrays[spec.name] = a;
  }
  return {meta: header.meta, arrays};
}

/** Read the payload embedded in the page's <script id="replay-data"> element. */
export async function loadEmbedded(id = 'replay-data') {
  const el = document.getElementById(id);
  if (!el) throw new Error('the page holds no replay data');
  const bytes = base64Bytes(el.textContent.trim());
  el.textContent = ''; // let the browser drop the text copy
  return parsePayload(await gunzip(bytes));
}
