//! Roles and what each may do. Every API route names the permission it needs; this table
//! is the only place that decides.

use crate::text_enum;

text_enum! {
    /// A staff member's or an API token's role.
    pub enum Role {
        Admin => "admin",
        Manager => "manager",
        Agent => "agent",
        Analyst => "analyst",
        ReadOnly => "read_only",
    }
}

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read customer records with their personal data.
    ReadCustomers,
    /// Read aggregates and lists with personal data masked.
    ReadAggregates,
    /// Create and update customers, orders and interactions.
    WriteCustomers,
    /// Delete customers and orders.
    DeleteCustomers,
    /// Manage the catalogue and accounts.
    WriteCatalog,
    /// Manage staff users and tokens.
    ManageUsers,
    /// Read the audit log: who changed what, with the values before and after.
    ReadAudit,
    /// Answer privacy requests: hand out everything held about a customer, erase them.
    Privacy,
}

impl Role {
    /// Whether this role may do `p`.
    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Manager => !matches!(p, ManageUsers),
            Role::Agent => matches!(p, ReadCustomers | ReadAggregates | WriteCustomers),
            Role::Analyst => matches!(p, ReadAggregates),
            Role::ReadOnly => matches!(p, ReadCustomers | ReadAggregates),
        }
    }

    /// Whether personal data must be masked for this role.
    pub fn sees_masked_personal_data(self) -> bool {
        !self.allows(Permission::ReadCustomers)
    }
}

/// Masks personal data for roles that see only aggregates: keeps enough to tell records
/// apart ("j***@example.com", "***4321", "W***").
pub mod mask {
    /// The first letter of the mailbox and of the domain, and the top-level domain: a
    /// small company's own domain would name the customer's employer.
    pub fn email(e: &str) -> String {
        match e.split_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                let host: String = domain.chars().take(1).collect();
                match domain.rsplit_once('.') {
                    Some((_, tld)) => format!("{first}***@{host}***.{tld}"),
                    None => format!("{first}***@{host}***"),
                }
            }
            None => "***".into(),
        }
    }

    /// A reference from another system (a customer number): its last two characters.
    pub fn reference(r: &str) -> String {
        let chars: Vec<char> = r.chars().collect();
        let tail: String = chars[chars.len().saturating_sub(2)..].iter().collect();
        format!("***{tail}")
    }

    pub fn phone(p: &str) -> String {
        let digits: Vec<char> = p.chars().filter(char::is_ascii_digit).collect();
        let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
        format!("***{tail}")
    }

    pub fn name(n: &str) -> String {
        let first: String = n.chars().take(1).collect();
        format!("{first}***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admin_manages_users() {
        for r in Role::ALL {
            assert_eq!(r.allows(Permission::ManageUsers), *r == Role::Admin, "{r}");
        }
    }

    #[test]
    fn analyst_sees_only_masked_aggregates() {
        assert!(Role::Analyst.allows(Permission::ReadAggregates));
        assert!(!Role::Analyst.allows(Permission::ReadCustomers));
        assert!(Role::Analyst.sees_masked_personal_data());
        assert!(!Role::ReadOnly.sees_masked_personal_data());
    }

    #[test]
    fn masks_keep_a_hint_only() {
        assert_eq!(mask::email("jane@example.com"), "j***@e***.com");
        assert_eq!(mask::email("wang@smallfirm.com.cn"), "w***@s***.cn");
        assert_eq!(mask::reference("C00000031"), "***31");
        assert_eq!(mask::phone("+86 138 0013 8000"), "***8000");
        assert_eq!(mask::name("王小明"), "王***");
    }
}

/// A staff member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffUser {
    pub id: crate::ids::StaffUserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Who is making a request: resolved from an API token or a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token_id: Option<crate::ids::TokenId>,
    pub name: String,
    pub role: Role,
}
