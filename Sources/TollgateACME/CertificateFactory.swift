import Crypto
import Foundation
import SwiftASN1
import X509

/// The certificate-side pieces: the CSR sent to the CA (for a fresh P-256 key), a self-signed
/// placeholder the listener starts with before the first certificate arrives, and the
/// validity of a PEM chain.
public enum CertificateFactory {
    /// A CSR for `domains` (the first is the subject's CN, all are SANs), DER.
    public static func csr(domains: [String], key: P256.Signing.PrivateKey) throws -> [UInt8] {
        let extensions = try Certificate.Extensions { SubjectAlternativeNames(domains.map { .dnsName($0) }) }
        let attributes = try CertificateSigningRequest.Attributes([.init(ExtensionRequest(extensions: extensions))])
        let request = try CertificateSigningRequest(
            version: .v1, subject: try DistinguishedName { CommonName(domains.first ?? "tollgate") },
            privateKey: Certificate.PrivateKey(key), attributes: attributes, signatureAlgorithm: .ecdsaWithSHA256)
        var serializer = DER.Serializer()
        try serializer.serialize(request)
        return serializer.serializedBytes
    }

    /// A self-signed certificate for `domains`, valid a day: the listener answers TLS with it
    /// until the CA's arrives (clients that verify refuse it; nothing else is served with it).
    public static func placeholder(domains: [String], key: P256.Signing.PrivateKey) throws -> String {
        let name = try DistinguishedName { CommonName((domains.first ?? "tollgate") + " (placeholder)") }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: now - 60, notValidAfter: now + 86_400,
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions { SubjectAlternativeNames(domains.map { .dnsName($0) }) },
            issuerPrivateKey: .init(key))
        return try certificate.serializeAsPEM().pemString
    }

    /// id-pe-acmeIdentifier (RFC 8737 §6.1).
    static let acmeIdentifier: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 1, 31]

    /// The TLS-ALPN-01 challenge certificate (RFC 8737 §3): self-signed for `domain`, with the
    /// critical acmeIdentifier extension holding the SHA-256 of the key authorization.
    public static func alpnChallenge(domain: String, keyAuthorization: String, key: P256.Signing.PrivateKey) throws -> String {
        let digest = Array(SHA256.hash(data: Array(keyAuthorization.utf8)))
        var value = DER.Serializer()
        try value.serialize(ASN1OctetString(contentBytes: ArraySlice(digest)))
        let name = try DistinguishedName { CommonName(domain) }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: now - 60, notValidAfter: now + 86_400,
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                SubjectAlternativeNames([.dnsName(domain)])
                Certificate.Extension(oid: acmeIdentifier, critical: true, value: ArraySlice(value.serializedBytes))
            },
            issuerPrivateKey: .init(key))
        return try certificate.serializeAsPEM().pemString
    }

    /// The first certificate of a PEM chain: its validity, whether it is a placeholder, and
    /// whether it names every one of `domains`.
    public static func inspect(pem: String, domains: [String]) -> (validity: RenewalSchedule.Current, coversDomains: Bool)? {
        guard let first = try? PEMDocument.parseMultiple(pemString: pem).first(where: { $0.discriminator == "CERTIFICATE" }),
            let certificate = try? Certificate(derEncoded: first.derBytes)
        else { return nil }
        if certificate.issuer == certificate.subject { return nil }  // a placeholder (or self-signed): not the CA's
        let names = (try? certificate.extensions.subjectAlternativeNames)?.flatMap { $0.compactMap { name -> String? in
            if case .dnsName(let dns) = name { return dns.lowercased() } else { return nil }
        } } ?? []
        let validity = RenewalSchedule.Current(
            notBefore: certificate.notValidBefore.timeIntervalSince1970, notAfter: certificate.notValidAfter.timeIntervalSince1970)
        return (validity, domains.allSatisfy { names.contains($0.lowercased()) })
    }
}
