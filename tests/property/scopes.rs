//! Scope sets: printing and parsing are inverse, whatever the order, repetition or spacing of
//! the input, and one unknown scope refuses the whole set.

use ibkr_agent_gateway::domain::scope::{Scope, ScopeSet};
use proptest::prelude::*;

fn any_scope() -> impl Strategy<Value = Scope> {
    prop::sample::select(Scope::ALL.to_vec())
}

fn any_subset() -> impl Strategy<Value = Vec<Scope>> {
    prop::sample::subsequence(Scope::ALL.to_vec(), 0..=Scope::ALL.len())
}

/// The subset, and a spelling of it with every scope at least once, some repeated, shuffled
/// and separated by arbitrary ASCII whitespace.
fn subset_and_messy_spelling() -> impl Strategy<Value = (Vec<Scope>, String)> {
    let repeat_picks = prop::collection::vec(any::<prop::sample::Index>(), 0..6);
    (any_subset(), repeat_picks)
        .prop_flat_map(|(subset, repeat_picks)| {
            let mut tokens = subset.clone();
            if !subset.is_empty() {
                tokens.extend(
                    repeat_picks
                        .iter()
                        .map(|pick| subset[pick.index(subset.len())]),
                );
            }
            let separators = prop::collection::vec("[ \t\n\r\u{c}]{1,3}", tokens.len() + 1);
            (Just(subset), Just(tokens).prop_shuffle(), separators)
        })
        .prop_map(|(subset, tokens, separators)| {
            let mut spelling = separators[0].clone();
            for (token, separator) in tokens.iter().zip(&separators[1..]) {
                spelling.push_str(token.as_str());
                spelling.push_str(separator);
            }
            (subset, spelling)
        })
}

proptest! {
    #[test]
    fn printed_sets_parse_back_to_themselves(subset in any_subset()) {
        let set: ScopeSet = subset.iter().copied().collect();
        let printed = set.to_string();
        let canonical: Vec<&str> = subset.iter().map(|scope| scope.as_str()).collect();
        prop_assert_eq!(&printed, &canonical.join(" "));
        prop_assert_eq!(ScopeSet::parse(&printed), Ok(set.clone()));
        prop_assert_eq!(set.len(), subset.len());
        prop_assert_eq!(set.has_write(), subset.iter().any(|scope| scope.is_write()));
    }

    #[test]
    fn order_repetition_and_spacing_do_not_matter(
        (subset, spelling) in subset_and_messy_spelling(),
    ) {
        let expected: ScopeSet = subset.iter().copied().collect();
        let parsed = ScopeSet::parse(&spelling);
        prop_assert_eq!(parsed.as_ref(), Ok(&expected), "spelling {:?}", spelling);
        prop_assert_eq!(parsed.unwrap().iter().collect::<Vec<_>>(), subset);
    }

    #[test]
    fn one_unknown_scope_refuses_the_set(
        subset in any_subset(),
        intruder in prop_oneof![
            "[a-zA-Z:]{1,30}",
            any_scope().prop_map(|scope| scope.as_str().to_uppercase()),
            any_scope().prop_map(|scope| format!("{scope}:x")),
        ],
        position in any::<prop::sample::Index>(),
    ) {
        prop_assume!(Scope::ALL.iter().all(|scope| scope.as_str() != intruder));
        let mut tokens: Vec<&str> = subset.iter().map(|scope| scope.as_str()).collect();
        let at = position.index(tokens.len() + 1);
        tokens.insert(at, &intruder);
        prop_assert!(ScopeSet::parse(&tokens.join(" ")).is_err());
    }
}
