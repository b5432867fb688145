//! Handing a person over to their workstation: the `.rdp` file a remote-desktop client opens, the encrypted-JSON
//! login link of an Apache Guacamole gateway, and the Wake-on-LAN magic packet that switches an office PC on.

use std::net::{IpAddr, SocketAddr};

use aes::Aes128;
use base64::Engine;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac as _};
use serde_json::json;
use sha2::Sha256;

use crate::model::{Mac, Protocol};

/// Where a client connects: the address when the inventory has one, else the hostname.
pub fn target_host(hostname: &str, address: Option<&str>) -> String {
    address.filter(|a| !a.is_empty()).unwrap_or(hostname).to_owned()
}

/// `host:port`, with an IPv6 address in brackets.
pub fn host_port(host: &str, port: u16) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
        _ => format!("{host}:{port}"),
    }
}

/// A `.rdp` file for Microsoft's Remote Desktop clients (mstsc, the Windows App, Remmina reads them too): plain
/// text, one `name:type:value` per line, CRLF. The user name is a hint; the password is asked at connection.
pub fn rdp_file(host: &str, port: u16, username: &str) -> String {
    let lines = [
        format!("full address:s:{}", host_port(host, port)),
        format!("username:s:{}", username.replace(['\r', '\n'], "")),
        "prompt for credentials:i:1".to_owned(),
        "authentication level:i:2".to_owned(),
        "screen mode id:i:2".to_owned(),
        "use multimon:i:0".to_owned(),
        "redirectclipboard:i:1".to_owned(),
        "audiomode:i:0".to_owned(),
        "autoreconnection enabled:i:1".to_owned(),
    ];
    let mut s = lines.join("\r\n");
    s.push_str("\r\n");
    s
}

// ---------------------------------------------------------------------------------------------------------------
// Guacamole

/// A Guacamole gateway with the encrypted-JSON authentication extension (`guacamole-auth-json`).
#[derive(Clone)]
pub struct Guacamole {
    /// The address of Guacamole's web application, e.g. `https://desktop.regione.example/guacamole`.
    pub url: String,
    /// The `json-secret-key` of `guacamole.properties`: 128 bits.
    pub key: [u8; 16],
    /// Passes `ignore-cert` to RDP connections (office PCs usually present a self-signed certificate).
    pub rdp_ignore_cert: bool,
}

// The key must never reach a log.
impl std::fmt::Debug for Guacamole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guacamole").field("url", &self.url).finish_non_exhaustive()
    }
}

/// Parses the 32 hexadecimal digits of a `json-secret-key`.
pub fn parse_key(hex_key: &str) -> Result<[u8; 16], String> {
    let bytes = hex::decode(hex_key.trim()).map_err(|_| "32 hexadecimal digits expected".to_owned())?;
    bytes.try_into().map_err(|_| "32 hexadecimal digits (128 bits) expected".to_owned())
}

/// What `guacamole-auth-json` accepts: HMAC-SHA256 of the JSON with the key, prepended to the JSON, the whole
/// encrypted with AES-128-CBC under the same key and an all-zero IV (PKCS#7 padding), in standard base64.
pub fn sign_and_encrypt(key: &[u8; 16], json: &[u8]) -> String {
    let signature = match <Hmac<Sha256>>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(json);
            mac.finalize().into_bytes().to_vec()
        }
        // HMAC takes a key of any length: this arm cannot be reached with 16 bytes.
        Err(_) => vec![0; 32],
    };
    let mut plain = signature;
    plain.extend_from_slice(json);
    let ct = cbc::Encryptor::<Aes128>::new(key.into(), &[0u8; 16].into()).encrypt_padded_vec_mut::<Pkcs7>(&plain);
    base64::engine::general_purpose::STANDARD.encode(ct)
}

/// The parameters of one connection to a workstation.
pub struct Connection<'a> {
    /// The name Guacamole shows (the workstation's hostname).
    pub name: &'a str,
    pub protocol: Protocol,
    pub host: &'a str,
    pub port: u16,
}

impl Guacamole {
    /// The JSON describing `username`'s access to one connection, valid until `expires_ms` (Unix milliseconds).
    pub fn auth_json(&self, username: &str, c: &Connection<'_>, expires_ms: i64) -> String {
        let mut parameters = json!({"hostname": c.host, "port": c.port.to_string()});
        if c.protocol == Protocol::Rdp && self.rdp_ignore_cert {
            parameters["ignore-cert"] = json!("true");
        }
        json!({
            "username": username,
            "expires": expires_ms,
            "connections": { c.name: { "protocol": c.protocol.as_str(), "parameters": parameters } },
        })
        .to_string()
    }

    /// A link that signs `username` in to Guacamole with just this connection (the `data` query parameter of
    /// any Guacamole page).
    pub fn link(&self, username: &str, c: &Connection<'_>, expires_ms: i64) -> String {
        let token = sign_and_encrypt(&self.key, self.auth_json(username, c, expires_ms).as_bytes());
        let data: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
        format!("{}/?data={data}", self.url.trim_end_matches('/'))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Wake-on-LAN

/// Sends the magic packet for `mac` by UDP to `target` (a broadcast address, usually port 9).
pub async fn wake(mac: Mac, target: SocketAddr) -> std::io::Result<()> {
    let bind: SocketAddr = if target.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let socket = tokio::net::UdpSocket::bind(bind).await?;
    socket.set_broadcast(true)?;
    socket.send_to(&mac.magic_packet(), target).await?;
    Ok(())
}

/// The known-answer example of Guacamole's manual ("Encrypted JSON authentication", reference implementation):
/// its key, its `auth.json` and the token it prints. The manual shows that file re-indented by four; the published
/// token decrypts to this exact text (two-space indentation, no final newline), and its signature verifies over it.
pub mod reference {
    pub const KEY: &str = "4C0B569E4C96DF157EEE1B65DD0E4D41";

    pub const JSON: &str = r#"{
  "username" : "test",
  "expires" : "1446323765000",
  "connections" : {
    "My Connection" : {
      "protocol" : "rdp",
      "parameters" : {
        "hostname" : "10.10.209.63",
        "port" : "3389",
        "ignore-cert": "true",
        "recording-path": "/recordings",
        "recording-name": "My-Connection-${GUAC_USERNAME}-${GUAC_DATE}-${GUAC_TIME}"
      }
    },
    "My OTHER Connection" : {
      "protocol" : "rdp",
      "parameters" : {
        "hostname" : "10.10.209.64",
        "port" : "3389",
        "ignore-cert": "true",
        "recording-path": "/recordings",
        "recording-name": "My-OTHER-Connection-${GUAC_USERNAME}-${GUAC_DATE}-${GUAC_TIME}"
      }
    }
  }
}"#;

    pub const TOKEN: &str = "\
A2Pf5Kpmm97I2DT1PifIrfU6q3yzoGcIbNXEd60WNangT8DAVjAl6luaqwhBJnCK\
uqcf9ZZlRo3uDxTHvUM3eq1YvdghL0GbosOn8Mn38j2ydOMk+Cd15a8ggb4/ddt/\
yIBK4DxrN7MNbouZ091KYtXC6m20E6sGzLy676BlMSg1cmsENRIihOynsSLSCvo0\
diif6H7T+ZuIqF7B5SW+adGfMaHlfknlIvSpLGHhrIP4aMYE/ZU2vYNg8ez27sCS\
wDBWu5lERtfCYFyU4ysjRU5Hyov+yKa+O7jcRYpw3N+fHbCg7/dxVNW07qNOKssv\
pzUciGvDPUCPpa02WmPJNEBowwQireO1952/MNAI77cW2UepbljD/bwOiZl2THJz\
LrENo7K5acimBa+EjWEesgn7lx/WTCF3zxR6TH1CWrQM8Et1aUK1Nf8K11xEQbTy\
klyaNtCmTfyahRZ/fUPxDNrdJVpPOSELkf7RJO5tOdK/FFIFIbze3ZUyXgRq+pHY\
owpgOmudDBTBlxhXiONdutRI/RZbFM/7GBMdmI8AR/401OCV3nsI4jLhukjMXH3V\
f3pQg+xKMhi/QExHhDk8VTNYk7GurK4vgehn7HQ0oSGh8pGcmxB6W43cz+hyn6VQ\
On6i90cSnIhRO8SysZt332LwJCDm7I+lBLaI8NVHU6bnAY1Axx5oH3YTKc4qzHls\
HEAFYLkD6aHMvHkF3b798CMravjxiJV3m7hsXDbaFN6AFhn8GIkMRRrjuevfZ+q9\
enWN14s24vt5OVg69DljzALobUNKUXFx69SR8EpSBvUcKq8s/OgbDpFvKbwsDY57\
HGT4T0CuRIA0TGUI075uerKBNApVhuBA1BmWJIrI4JXw5MuX6pdBe+MYccO3vfo+\
/frazj8rHdkDa/IbueMbvq+1ozV2+UuxrbaTrV2i4jSRgd74U0QzOh9e8Q0i7vOi\
l3hnIfOfg+v1oULmZmJSeiAYWxeGvPptp+n7rNFqHGM=";

}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guacamole_token_matches_the_manuals_reference_byte_for_byte() {
        let key = parse_key(reference::KEY).unwrap();
        assert_eq!(sign_and_encrypt(&key, reference::JSON.as_bytes()), reference::TOKEN);
    }

    #[test]
    fn guacamole_keys_are_128_bits_of_hex() {
        assert!(parse_key("4c0b569e4c96df157eee1b65dd0e4d41").is_ok());
        assert!(parse_key("4c0b569e4c96df157eee1b65dd0e4d").is_err());
        assert!(parse_key("not hex at all, not hex at all!!").is_err());
    }

    #[test]
    fn a_guacamole_link_carries_the_url_encoded_token() {
        let g = Guacamole { url: "https://desktop.example/guacamole/".into(), key: [7; 16], rdp_ignore_cert: true };
        let c = Connection { name: "pc-1", protocol: Protocol::Rdp, host: "10.0.0.5", port: 3389 };
        let json: serde_json::Value = serde_json::from_str(&g.auth_json("sara@regione.example", &c, 1_700_000_000_000)).unwrap();
        assert_eq!(json["connections"]["pc-1"]["parameters"]["port"], "3389");
        assert_eq!(json["connections"]["pc-1"]["parameters"]["ignore-cert"], "true");
        assert_eq!(json["expires"], 1_700_000_000_000i64);
        let link = g.link("sara@regione.example", &c, 1_700_000_000_000);
        assert!(link.starts_with("https://desktop.example/guacamole/?data="), "{link}");
        assert!(!link["https://desktop.example/guacamole/?data=".len()..].contains(['+', '/', '=']), "{link}");
    }

    #[test]
    fn rdp_files_name_the_host_and_port() {
        let f = rdp_file("10.0.0.5", 3390, "sara@regione.example");
        assert!(f.starts_with("full address:s:10.0.0.5:3390\r\nusername:s:sara@regione.example\r\n"), "{f}");
        assert!(rdp_file("fd00::5", 3389, "x").starts_with("full address:s:[fd00::5]:3389\r\n"));
        assert!(f.ends_with("\r\n") && !f.contains("\n\n"));
    }

    #[tokio::test]
    async fn the_magic_packet_reaches_the_target() {
        let listener = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mac = Mac([0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e]);
        wake(mac, listener.local_addr().unwrap()).await.unwrap();
        let mut buf = [0u8; 200];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf[..n], &mac.magic_packet()[..]);
    }
}
