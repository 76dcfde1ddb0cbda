import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { parseDomFromString, signXml, xpath } from '@node-saml/node-saml/lib/xml.js';

/** A key pair and self-signed certificate made for this test run (openssl; the IdP's signing key). */
function keyAndCert(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'saml-idp-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=test-saml-idp'], { stdio: 'ignore' });
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface AssertionOptions {
  inResponseTo: string; recipient: string; audience: string; email: string;
  id?: string; issuer?: string; notOnOrAfter?: Date; sign?: 'idp' | 'other' | 'none'; tamperEmail?: string;
}

/**
 * The IdP side of SAML for tests, played with the same library the cluster's SP uses (@node-saml/node-saml's
 * XML signing, xml-crypto underneath): its metadata, decoding of the SP's HTTP-Redirect AuthnRequest, and signed
 * Responses built to order — good ones and each kind of broken one.
 */
export function samlIdp(entityID = 'https://idp.saml.example/metadata', ssoURL = 'https://idp.saml.example/sso') {
  const idp = keyAndCert();
  const other = keyAndCert();
  const certBody = idp.cert.replace(/-----[A-Z ]+-----|\s/g, '');
  const metadata = `<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="${entityID}">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" WantAuthnRequestsSigned="false">
    <md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>${certBody}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${ssoURL}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>`;

  /** The SP's AuthnRequest from the redirect URL: its ID (to answer InResponseTo), ACS URL and RelayState. */
  async function readRequest(url: string) {
    const u = new URL(url);
    const xml = inflateRawSync(Buffer.from(u.searchParams.get('SAMLRequest')!, 'base64')).toString();
    const doc = await parseDomFromString(xml);
    const req = xpath.selectElements(doc, "/*[local-name()='AuthnRequest']")[0];
    const issuer = xpath.selectElements(doc, "/*[local-name()='AuthnRequest']/*[local-name()='Issuer']")[0]?.textContent;
    return { id: req.getAttribute('ID')!, acs: req.getAttribute('AssertionConsumerServiceURL')!, issuer, relayState: u.searchParams.get('RelayState')! };
  }

  /** A base64 SAMLResponse for the HTTP-POST binding. */
  function response(o: AssertionOptions): string {
    const now = new Date();
    const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
    const until = o.notOnOrAfter ?? new Date(now.getTime() + 5 * 60_000);
    const issuer = o.issuer ?? entityID;
    const id = o.id ?? `_a${randomBytes(16).toString('hex')}`;
    const xml = `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r${randomBytes(16).toString('hex')}" Version="2.0" IssueInstant="${iso(now)}" Destination="${o.recipient}" InResponseTo="${o.inResponseTo}">` +
      `<saml:Issuer>${issuer}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>` +
      `<saml:Assertion ID="${id}" Version="2.0" IssueInstant="${iso(now)}"><saml:Issuer>${issuer}</saml:Issuer>` +
      `<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">${o.email}</saml:NameID>` +
      `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData InResponseTo="${o.inResponseTo}" NotOnOrAfter="${iso(until)}" Recipient="${o.recipient}"/></saml:SubjectConfirmation></saml:Subject>` +
      `<saml:Conditions NotBefore="${iso(new Date(now.getTime() - 60_000))}" NotOnOrAfter="${iso(until)}"><saml:AudienceRestriction><saml:Audience>${o.audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
      `<saml:AuthnStatement AuthnInstant="${iso(now)}" SessionIndex="_s1"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
      `<saml:AttributeStatement><saml:Attribute Name="email"><saml:AttributeValue>${o.email}</saml:AttributeValue></saml:Attribute></saml:AttributeStatement>` +
      `</saml:Assertion></samlp:Response>`;
    let out = xml;
    if (o.sign !== 'none') {
      const assertion = "//*[local-name(.)='Assertion']";
      out = signXml(xml, assertion, { reference: `${assertion}/*[local-name(.)='Issuer']`, action: 'after' }, { privateKey: (o.sign === 'other' ? other : idp).key, signatureAlgorithm: 'sha256', digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256' });
    }
    if (o.tamperEmail) out = out.split(o.email).join(o.tamperEmail);
    return Buffer.from(out).toString('base64');
  }

  return { entityID, metadata, readRequest, response };
}
