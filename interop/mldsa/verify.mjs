// Checks OpenPCA's ML-DSA objects with code that is not Go's: asn1js reads
// the DER, @noble/post-quantum checks the signatures. Usage:
//
//   node verify.mjs manifest.json
//
// The manifest lists objects, each {name, kind, der, issuer}: kind is
// "certificate", "crl" or "ocsp"; der and issuer are paths to DER files,
// issuer the certificate whose key signed the object. Every signature must
// be ML-DSA in the form of the IETF LAMPS profile (RFC 9881): the pure
// algorithm identifier of the issuer key's scheme, with absent parameters,
// the same inside the signed part as outside, and a raw public key of the
// scheme's size. Prints one line per object; exits 1 if any fails.
import { readFileSync } from "node:fs";
import * as asn1js from "asn1js";
import { ml_dsa44, ml_dsa65, ml_dsa87 } from "@noble/post-quantum/ml-dsa.js";

const schemes = {
  "2.16.840.1.101.3.4.3.17": { name: "ML-DSA-44", dsa: ml_dsa44, publicKeySize: 1312 },
  "2.16.840.1.101.3.4.3.18": { name: "ML-DSA-65", dsa: ml_dsa65, publicKeySize: 1952 },
  "2.16.840.1.101.3.4.3.19": { name: "ML-DSA-87", dsa: ml_dsa87, publicKeySize: 2592 },
};

function parse(bytes) {
  const buf = new Uint8Array(bytes).buffer;
  const { offset, result } = asn1js.fromBER(buf);
  if (offset === -1 || offset !== buf.byteLength) throw new Error("not a single DER element");
  return result;
}

// raw returns the DER encoding of a parsed element, exactly as it was read.
function raw(element) {
  return new Uint8Array(element.valueBeforeDecodeView ?? element.valueBeforeDecode);
}

// mldsaAlgorithm checks an AlgorithmIdentifier: an ML-DSA OID and nothing
// else, and returns its scheme.
function mldsaAlgorithm(algID) {
  if (!(algID instanceof asn1js.Sequence) || algID.valueBlock.value.length !== 1) {
    throw new Error("the AlgorithmIdentifier has parameters, or is not one");
  }
  const oid = algID.valueBlock.value[0];
  const scheme = oid instanceof asn1js.ObjectIdentifier && schemes[oid.valueBlock.toString()];
  if (!scheme) throw new Error(`the algorithm ${oid.valueBlock.toString()} is not ML-DSA`);
  return scheme;
}

// publicKey returns the ML-DSA key of a certificate.
function publicKey(certDER) {
  const tbs = parse(certDER).valueBlock.value[0];
  const fields = tbs.valueBlock.value;
  const spki = fields[fields[0].idBlock.tagClass === 3 ? 6 : 5];
  const scheme = mldsaAlgorithm(spki.valueBlock.value[0]);
  const bits = spki.valueBlock.value[1];
  if (!(bits instanceof asn1js.BitString) || bits.valueBlock.unusedBits !== 0) throw new Error("the public key is not a whole BIT STRING");
  const key = new Uint8Array(bits.valueBlock.valueHexView);
  if (key.length !== scheme.publicKeySize) throw new Error(`a ${scheme.name} key of ${key.length} bytes`);
  return { scheme, key };
}

// signed returns the signed part, the algorithm and the signature of an
// object SEQUENCE { tbs, AlgorithmIdentifier, BIT STRING, ... }.
function signed(element) {
  const [tbs, algID, sig] = element.valueBlock.value;
  return { tbs, algID, sig: new Uint8Array(sig.valueBlock.valueHexView) };
}

function check(object) {
  const issuer = publicKey(readFileSync(object.issuer));
  let top = parse(readFileSync(object.der));
  if (object.kind === "ocsp") {
    // OCSPResponse { status, [0] { responseType, OCTET STRING { BasicOCSPResponse } } }
    const responseBytes = top.valueBlock.value[1].valueBlock.value[0];
    top = parse(responseBytes.valueBlock.value[1].valueBlock.valueHexView);
  }
  const { tbs, algID, sig } = signed(top);
  const scheme = mldsaAlgorithm(algID);
  if (scheme !== issuer.scheme) throw new Error(`signed with ${scheme.name} by a ${issuer.scheme.name} key`);
  if (object.kind !== "ocsp") {
    // The signed part names the algorithm too: after the version and
    // serial of a certificate, after the version of a CRL.
    const fields = tbs.valueBlock.value;
    const versioned = object.kind === "certificate" ? fields[0].idBlock.tagClass === 3 : fields[0] instanceof asn1js.Integer;
    const inner = fields[(object.kind === "certificate" ? 1 : 0) + (versioned ? 1 : 0)];
    if (Buffer.compare(Buffer.from(raw(inner)), Buffer.from(raw(algID))) !== 0) {
      throw new Error("the signature algorithm inside the signed part differs from the one outside");
    }
  }
  if (object.kind === "certificate" && object.subjectMLDSA) publicKey(readFileSync(object.der));
  if (!scheme.dsa.verify(sig, raw(tbs), issuer.key)) throw new Error(`the ${scheme.name} signature does not verify`);
  return scheme.name;
}

const manifest = JSON.parse(readFileSync(process.argv[2], "utf8"));
let failed = 0;
for (const object of manifest) {
  try {
    console.log(`ok ${object.name}: ${check(object)}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${object.name}: ${e.message}`);
  }
}
process.exit(failed ? 1 : 0);
